"""Fitness shaping, optimisers, seeds and checkpoint files of `es`."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import es
from es import checkpoint as ckpt
from es import seeding
from es.evaluation import _hand_out


# -- handing tasks to Ray actors ------------------------------------------------------------

def hand_out_reference(load, queued, in_flight):
    """One task at a time: to an idle actor (the first), else, while at least as many tasks
    wait as there are actors, behind the least loaded actor below in_flight (the first)."""
    load, chosen = list(load), []
    while queued:
        idle = [a for a, tasks in enumerate(load) if tasks == 0]
        open_ = [a for a, tasks in enumerate(load) if tasks < in_flight]
        if idle:
            a = idle[0]
        elif open_ and queued >= len(load):
            a = min(open_, key=lambda b: (load[b], b))
        else:
            break
        chosen.append(a)
        load[a] += 1
        queued -= 1
    return chosen


@given(st.integers(1, 3).flatmap(lambda in_flight: st.tuples(
    st.lists(st.integers(0, in_flight), min_size=1, max_size=7), st.integers(0, 20), st.just(in_flight))))
@settings(max_examples=300, deadline=None)
def test_hand_out_matches_reference(case):
    load, queued, in_flight = case
    assert _hand_out(load, queued, in_flight) == hand_out_reference(load, queued, in_flight)


def test_hand_out_keeps_the_last_tasks_for_the_first_free_actor():
    assert _hand_out([0, 0], 8, 2) == [0, 1, 0, 1]  # the start: everyone busy, one queued each
    assert _hand_out([1, 1], 5, 2) == [0, 1]
    assert _hand_out([1, 1], 2, 2) == [0]  # as many left as actors: one may still queue
    assert _hand_out([1, 1], 1, 2) == []  # the last one waits for whichever actor frees first
    assert _hand_out([0, 1], 1, 2) == [0]
    assert _hand_out([2, 2, 1], 9, 2) == [2]


def simulated_makespan(durations, actors, in_flight, hand_out):
    """Wall time of a generation whose task i takes durations[i], handed out by hand_out
    whenever a task ends (round trips free)."""
    queue, busy_until, waiting, now = list(range(len(durations))), [0.0] * actors, [[] for _ in range(actors)], 0.0
    load = [0] * actors
    running = [None] * actors
    while queue or any(load):
        for a in hand_out(load, len(queue), in_flight):
            waiting[a].append(queue.pop(0))
            load[a] += 1
        for a in range(actors):
            if running[a] is None and waiting[a]:
                running[a] = waiting[a].pop(0)
                busy_until[a] = now + durations[running[a]]
        a = min((b for b in range(actors) if running[b] is not None), key=lambda b: busy_until[b])
        now, running[a] = busy_until[a], None
        load[a] -= 1
    return now


def test_hand_out_shortens_the_tail_of_a_generation():
    # Two workers, eight episodes, the sixth slow. Filling every actor up to in_flight (the
    # previous rule) queues the last episode behind the slow one while the other actor idles.
    durations = [1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0]

    def fill_up(load, queued, in_flight):
        return [a for a in range(len(load)) for _ in range(in_flight - load[a])][:queued]
    assert simulated_makespan(durations, 2, 2, fill_up) == 6.0
    assert simulated_makespan(durations, 2, 2, _hand_out) == 5.0  # = the work / 2: no idling


# -- shaping --------------------------------------------------------------------------------

def test_centered_ranks_reference_values():
    np.testing.assert_allclose(es.centered_ranks(np.array([10.0, -3.0, 7.0, 0.0, 2.0])), [0.5, -0.5, 0.25, -0.25, 0.0])


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=40))
@settings(max_examples=60, deadline=None)
def test_centered_ranks_properties(values):
    f = np.array(values)
    w = es.centered_ranks(f)
    assert w.min() >= -0.5 and w.max() <= 0.5 and abs(w.sum()) < 1e-9  # bounded and centred
    order = np.argsort(f, kind="stable")
    assert np.all(np.diff(w[order]) >= -1e-12)  # monotone in fitness
    for i in range(len(f)):  # ties get equal weight
        assert np.all(w[f == f[i]] == w[i])


def test_z_score_and_raw():
    f = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(es.z_score(f), (f - 2) / np.std(f))
    np.testing.assert_array_equal(es.z_score(np.ones(4)), np.zeros(4))
    np.testing.assert_array_equal(es.raw(f), f)


# -- optimisers -----------------------------------------------------------------------------

def test_adam_matches_textbook_reference():
    rng = np.random.default_rng(0)
    opt = es.Adam()
    state = opt.init(5)
    m = v = np.zeros(5)
    for t in range(1, 6):
        g = rng.standard_normal(5).astype(np.float32)
        update, state = opt.step(state, g, 0.01)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
        reference = 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(update, reference, rtol=2e-4)


def test_sgd_with_momentum():
    opt = es.SGD(momentum=0.5)
    state = opt.init(2)
    u1, state = opt.step(state, np.array([1.0, 2.0], np.float32), 0.1)
    u2, state = opt.step(state, np.array([1.0, 2.0], np.float32), 0.1)
    np.testing.assert_allclose(u1, [0.1, 0.2])
    np.testing.assert_allclose(u2, [0.15, 0.3])


def test_clipup_normalises_then_clips_speed():
    opt = es.ClipUp(momentum=0.9, max_speed=0.3)
    state = opt.init(2)
    u, state = opt.step(state, np.array([300.0, 400.0], np.float32), 0.2)
    np.testing.assert_allclose(u, [0.12, 0.16], rtol=1e-6)  # lr * g/|g|, whatever |g| is
    for _ in range(20):
        u, state = opt.step(state, np.array([3.0, 4.0], np.float32), 0.2)
    assert np.linalg.norm(u) == pytest.approx(0.3, rel=1e-5)  # momentum builds up to max_speed
    zero, _ = opt.step(opt.init(2), np.zeros(2, np.float32), 0.2)
    assert np.all(np.isfinite(zero)) and not zero.any()


# -- seeds ----------------------------------------------------------------------------------

def test_seeds_are_stable_and_separated():
    train = seeding.train_episode_seeds(7, generation=3, group=2, episodes=4)
    assert train == seeding.train_episode_seeds(7, 3, 2, 4)
    assert train != seeding.train_episode_seeds(7, 3, 1, 4) != seeding.train_episode_seeds(7, 2, 2, 4)
    assert train != seeding.train_episode_seeds(8, 3, 2, 4)
    held = seeding.held_out_seeds(7, 5)
    assert held[:3] == seeding.held_out_seeds(7, 3)  # more episodes extend the same list
    assert all(0 <= s < 2**31 for s in train) and all(2**31 <= s < 2**32 for s in held)
    offsets = seeding.noise_offsets(7, 0, 50, 2**30)
    assert len(set(offsets)) == 50 and offsets.dtype == np.int64
    assert list(seeding.noise_offsets(7, 0, 3, 2**30)) == list(offsets[:3])  # pair k's offset ignores the popsize
    assert list(seeding.noise_offsets(7, 1, 3, 2**30)) != list(offsets[:3])
    assert list(seeding.noise_offsets(8, 0, 3, 2**30)) != list(offsets[:3])


@given(st.integers(0, 2**63), st.integers(0, 10**6), st.integers(0, 10**4))
@settings(max_examples=50, deadline=None)
def test_held_out_never_collides_with_training(seed, generation, group):
    held = set(seeding.held_out_seeds(seed, 20))
    assert held.isdisjoint(seeding.train_episode_seeds(seed, generation, group, 20))


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_seed_is_usage_error(bad):
    with pytest.raises(es.UsageError, match="seed"):
        seeding.check_seed(bad)


# -- checkpoint files -----------------------------------------------------------------------

def test_save_load_round_trip_without_pickle(tmp_path):
    arrays = {"centre": np.arange(5, dtype=np.float32), "state.opt.m": np.ones((2, 3))}
    ckpt.save_arrays(tmp_path / "a.npz", arrays, {"lr": 0.1 * 3, "gen": 4})
    loaded, meta = ckpt.load_arrays(tmp_path / "a.npz")
    assert meta == {"lr": 0.1 * 3, "gen": 4}  # floats survive JSON exactly
    for k in arrays:
        np.testing.assert_array_equal(loaded[k], arrays[k])
        assert loaded[k].dtype == arrays[k].dtype
    assert json.loads((tmp_path / "a.json").read_text())["format"] == ckpt.FORMAT
    assert not list(tmp_path.glob(".*tmp*"))  # no temp files left behind


def test_object_arrays_are_refused(tmp_path):
    ckpt.save_arrays(tmp_path / "o.npz", {"x": np.array([{"a": 1}], dtype=object)}, {})
    with pytest.raises(es.CheckpointError, match="cannot be read"):
        ckpt.load_arrays(tmp_path / "o.npz")


@pytest.mark.parametrize("damage", ["flip", "truncate", "json", "missing_npz"])
def test_damaged_checkpoint_is_named_and_previous_one_loads(tmp_path, damage):
    for g in (1, 2):
        ckpt.save_arrays(ckpt.checkpoint_path(tmp_path, g), {"centre": np.full(3, g, np.float32)}, {"generation": g})
    newest = ckpt.checkpoint_path(tmp_path, 2)
    if damage == "flip":
        data = bytearray(newest.read_bytes())
        data[len(data) // 2] ^= 0xFF
        newest.write_bytes(bytes(data))
    elif damage == "truncate":
        newest.write_bytes(newest.read_bytes()[:40])
    elif damage == "json":
        newest.with_suffix(".json").write_text("{not json")
    else:
        newest.unlink()
    with pytest.raises(es.CheckpointError) as info:
        ckpt.load_arrays(newest)
    assert "gen-000002" in str(info.value) and "\n" not in str(info.value)
    arrays, meta, path, damaged = ckpt.load_latest(tmp_path)
    assert meta["generation"] == 1 and path == ckpt.checkpoint_path(tmp_path, 1) and len(damaged) == 1


def test_prune_keeps_newest(tmp_path):
    for g in range(1, 6):
        ckpt.save_arrays(ckpt.checkpoint_path(tmp_path, g), {"centre": np.zeros(1)}, {})
    ckpt.prune(tmp_path, 2)
    assert [g for g, _ in ckpt.list_checkpoints(tmp_path)] == [4, 5]
    assert len(list((tmp_path / "checkpoints").iterdir())) == 4
