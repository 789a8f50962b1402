"""The noise table and its kernels against plain NumPy references, on random shapes."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import es
from es import noise_table, seeding
from es.noise_table import NoiseTable
from es.population import CENTRE, Perturbation, materialize
from es.strategy import pair_offsets

SIZE = 2**16
VALUES = np.random.default_rng(0).standard_normal(SIZE).astype(np.float32)  # any float32 array serves the kernels


def reference_sum(values, offsets, weights, n):
    """The obvious loop: out += w_k * values[o_k : o_k + n], in float32, pair by pair."""
    out = np.zeros(n, np.float32)
    for o, w in zip(offsets, weights):
        out += np.float32(w) * values[o:o + n]
    return out


def random_case(seed, pairs_max=40, n_max=10_000):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, n_max))
    pairs = int(rng.integers(0, pairs_max))
    offsets = rng.integers(0, SIZE - n + 1, pairs)
    weights = rng.standard_normal(pairs).astype(np.float32)
    weights[rng.random(pairs) < 0.2] = 0  # tied pairs are skipped by the kernel
    return n, offsets, weights, rng


# -- kernels ----------------------------------------------------------------------------------

@given(st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_weighted_sum_is_the_numpy_loop_bit_for_bit(seed):
    n, offsets, weights, _ = random_case(seed)
    np.testing.assert_array_equal(noise_table.weighted_sum(VALUES, offsets, weights, n),
                                  reference_sum(VALUES, offsets, weights, n))


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_pgpe_sums_use_the_squares_of_the_slices(seed):
    n, offsets, a, rng = random_case(seed)
    b = rng.standard_normal(len(offsets)).astype(np.float32)
    first, second = noise_table.weighted_sums_and_squares(VALUES, offsets, a, b, n)
    want_second = np.zeros(n, np.float32)
    for o, w in zip(offsets, b):
        z = VALUES[o:o + n]
        want_second += w * (z * z - np.float32(1))
    np.testing.assert_array_equal(first, reference_sum(VALUES, offsets, a, n))
    np.testing.assert_array_equal(second, want_second)


@given(st.integers(0, 2**32 - 1), st.sampled_from([1, -1]), st.booleans())
@settings(max_examples=60, deadline=None)
def test_perturb_is_centre_plus_sign_sigma_slice(seed, sign, per_parameter):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 10_000))
    offset = int(rng.integers(0, SIZE - n + 1))
    centre = rng.standard_normal(n).astype(np.float32)
    sigma = rng.uniform(0.01, 2, n).astype(np.float32) if per_parameter else np.float32(rng.uniform(0.01, 2))
    got = noise_table.perturb(centre, sigma, VALUES, offset, sign)
    np.testing.assert_array_equal(got, centre + (np.float32(sign) * sigma) * VALUES[offset:offset + n])
    assert got.dtype == np.float32 and got is not centre


def test_kernels_refuse_slices_outside_the_table():
    with pytest.raises(ValueError, match="offsets must lie in"):
        noise_table.weighted_sum(VALUES, [SIZE - 9], [1.0], 10)
    with pytest.raises(ValueError, match="outside the table"):
        noise_table.perturb(np.zeros(10, np.float32), np.float32(1), VALUES, -1, 1)


# -- the table and its offsets ----------------------------------------------------------------

def test_table_is_standard_normal_float32_and_a_function_of_the_seed():
    a = noise_table.build(NoiseTable(3, 2**20))
    assert a.dtype == np.float32 and a.shape == (2**20,) and not a.flags.writeable
    np.testing.assert_array_equal(a, noise_table.build(NoiseTable(3, 2**20)))
    assert not np.array_equal(a[:100], noise_table.build(NoiseTable(4, 2**20))[:100])
    np.testing.assert_array_equal(noise_table.build(NoiseTable(3, 1000)), a[:1000])  # a prefix of a larger table
    assert abs(a.mean()) < 5e-3 and abs(a.std() - 1) < 5e-3


def test_load_builds_once_per_process_and_adopt_replaces_it():
    table = NoiseTable(12345, 2**20)
    first = noise_table.load(table)
    assert noise_table.is_loaded(table) and noise_table.load(table) is first
    view = first.copy()
    noise_table.adopt(table, view)
    assert noise_table.load(table) is view
    with pytest.raises(ValueError, match="float32"):
        noise_table.adopt(table, np.zeros(10))


@given(st.integers(0, 2**63), st.integers(0, 10**6), st.integers(1, 300), st.integers(1, 2**34))
@settings(max_examples=100, deadline=None)
def test_offsets_lie_in_the_table(seed, generation, pairs, span):
    offsets = seeding.noise_offsets(seed, generation, pairs, span)
    assert offsets.shape == (pairs,) and offsets.dtype == np.int64
    assert offsets.min() >= 0 and offsets.max() < span


@pytest.mark.parametrize("n, size", [(1, 2**20), (8192, 2**20), (8193, 2**21), (61_440, 2**23), (456_640, 2**26)])
def test_default_size_holds_128_to_256_floats_per_parameter(n, size):
    assert noise_table.default_size(n) == size
    assert noise_table.check_size(None, n) == size


def test_sizes_that_cannot_work_are_one_line_usage_errors(monkeypatch):
    for bad, message in [(1000, "too small for 100 parameters"), (99, "too small"), (2.5, "whole number")]:
        with pytest.raises(es.UsageError, match=message) as info:
            es.OpenAIES(100, 4, noise_table_size=bad)
        assert "\n" not in str(info.value)
    with pytest.raises(es.UsageError, match="too small for 70 parameters"):
        es.PGPE(70, 4, noise_table_size=100)  # n close to the table
    assert es.OpenAIES(100, 4, noise_table_size=1600).noise_table_size == 1600
    monkeypatch.setattr(noise_table, "physical_memory", lambda: 400 * 2**20)  # a machine of 400 MiB
    with pytest.raises(es.UsageError, match=r"\(67108864 floats, 256 MiB\) would take over half of this machine's "
                                            r"400 MiB; set noise_table_size lower \(at least 7306240\)"):
        es.OpenAIES(456_640, 200)
    assert es.OpenAIES(456_640, 200, noise_table_size=2**25).noise_table_size == 2**25


def test_no_memory_to_build_is_one_line(monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(noise_table.np, "empty", no_memory)
    with pytest.raises(es.ResourceError, match="no memory for the noise table") as info:
        noise_table.build(NoiseTable(0, 2**20))
    assert "\n" not in str(info.value)


# -- the strategies on the table --------------------------------------------------------------

@pytest.mark.parametrize("name", ["openai-es", "pgpe"])
def test_members_are_slices_of_the_runs_table(name):
    n, popsize = 300, 10
    strategy = es.make_strategy(name, n, popsize, 0.5, lr=0.1)
    state = strategy.init(np.linspace(-1, 1, n, dtype=np.float32), seed=21)
    pop = strategy.ask(state)
    table = pop.shared.table
    assert table == NoiseTable(21, strategy.noise_table_size) == strategy.noise_table(state)
    values = noise_table.build(table)
    for k, (plus, minus) in enumerate(zip(pop.members[0::2], pop.members[1::2])):
        assert (plus.offset, plus.sign, minus.offset, minus.sign) == (pair_offsets(pop)[k], 1, pair_offsets(pop)[k], -1)
        sigma = pop.shared.sigma
        np.testing.assert_array_equal(materialize(pop.shared, plus), state.centre + sigma * values[plus.offset:plus.offset + n])
    np.testing.assert_array_equal(pair_offsets(pop), seeding.noise_offsets(21, 0, popsize // 2, table.size - n + 1))
    np.testing.assert_array_equal(materialize(pop.shared, CENTRE), state.centre)


def test_openai_es_gradient_is_the_weighted_sum_of_the_slices():
    n, popsize, sigma = 200, 12, 0.2
    strategy = es.OpenAIES(n, popsize, sigma, lr=1.0, shaping="raw")
    state = strategy.init(np.zeros(n, np.float32), seed=2)
    pop = strategy.ask(state)
    fitness = np.random.default_rng(0).normal(size=popsize)
    values = noise_table.build(pop.shared.table)
    want = reference_sum(values, pair_offsets(pop), (fitness[0::2] - fitness[1::2]).astype(np.float32), n)
    want *= np.float32(1 / (popsize * sigma))
    np.testing.assert_array_equal(strategy.tell(state, pop, fitness).centre, np.float32(1.0) * want)


def test_pgpe_stdev_update_uses_the_squared_slices():
    n, popsize, sigma, stdev_lr = 150, 8, 0.3, 0.05
    strategy = es.PGPE(n, popsize, sigma, lr=0.1, optimizer="sgd", stdev_lr=stdev_lr, stdev_max_change=0.99)
    state = strategy.init(np.zeros(n, np.float32), seed=8)
    pop = strategy.ask(state)
    w = es.centered_ranks(np.random.default_rng(1).normal(size=popsize))
    values = noise_table.build(pop.shared.table).astype(np.float64)
    z = np.stack([values[o:o + n] for o in pair_offsets(pop)])
    grad_stdev = sigma * (((w[0::2] + w[1::2]) / 2 - w.mean()) @ (z**2 - 1)) / (popsize // 2)
    new = strategy.tell(state, pop, w)  # centered_ranks of ranks are the ranks again
    np.testing.assert_allclose(new.stdev, sigma + stdev_lr * grad_stdev, rtol=1e-5, atol=1e-6)


def test_a_member_on_the_wire_is_two_small_integers():
    strategy = es.OpenAIES(50_000, 4)
    population = strategy.ask(strategy.init(np.zeros(50_000, np.float32), 1))
    member = population.members[0]
    assert isinstance(member, Perturbation) and isinstance(member.offset, int) and member.sign in (1, -1)
    assert len(pickle.dumps(population.shared.table)) < 200  # the table's name, never its values
