"""Hebbian and static networks against a plain NumPy reference written here."""
import math

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from hebbian.network import HebbianNetwork, StaticNetwork
from hebbian.rules import RULE_NAMES
from reference_rule import reference_rollout


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 23), min_size=2, max_size=4),
    rule=st.sampled_from(RULE_NAMES),
    normalize=st.booleans(),
    activation=st.sampled_from(["tanh", "relu", "linear"]),
    steps=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)
# Cancellation in an unnormalised linear stack (see assert_close_at_float32_scale).
@example(sizes=[6, 15, 13, 23], rule="AD", normalize=False, activation="linear", steps=4, seed=0)
def test_hebbian_kernel_matches_numpy_reference(sizes, rule, normalize, activation, steps, seed):
    rng = np.random.default_rng(seed)
    # The guard's limit is set out of reach: this test is about the arithmetic; the guard has its own.
    net = HebbianNetwork(sizes, rule=rule, activation=activation, normalize=normalize, weight_limit=1e30)
    params = rng.uniform(-0.5, 0.5, net.num_params).astype(np.float32)
    net.set_params(params)
    net.reset(seed)
    w0 = [w.copy() for w in net.weights]
    inputs = rng.uniform(-1, 1, (steps, sizes[0])).astype(np.float32)
    outs = [net.step(x).copy() for x in inputs]
    ref_outs, ref_ws = reference_rollout(sizes, rule, params, w0, inputs, normalize, activation)
    for got, want in list(zip(outs, ref_outs)) + list(zip(net.weights, ref_ws)):
        assert_close_at_float32_scale(got, want)
    assert not net.diverged


def assert_close_at_float32_scale(got, want):
    """float32 against the float64 reference. An entry that comes out of a cancellation (terms of
    hundreds summing to 0.2, as unnormalised linear layers give) carries float32 rounding of the
    terms, not of itself, so the absolute tolerance scales with the array's largest entry (the terms'
    scale); the relative one still holds every entry. Over 1,500 random cases the worst error was
    2.4e-6 of the array's largest entry, against the 2e-5 allowed; an element-wise atol of 2e-5
    failed now and then (e.g. sizes [6, 15, 13, 23], AD, linear, no normalisation, seed 0: -0.19473
    against -0.19483 in a layer whose entries reach 2,295)."""
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5 * scale)


def test_float32_scale_tolerance_still_catches_an_error_of_one_term():
    # The scaled tolerance must not hide a real mistake: an error of 1e-3 of the array's largest
    # entry on a small entry (e.g. one missing term) still fails.
    want = np.array([0.2, -3.0, 1000.0])
    assert_close_at_float32_scale(want + np.array([0.0, 0.0, 0.01]), want)
    with pytest.raises(AssertionError):
        assert_close_at_float32_scale(want + np.array([1.0, 0.0, 0.0]), want)



@pytest.mark.parametrize("sizes", [(648, 128, 64, 3), (28, 128, 64, 8), (33, 47, 5)])
def test_kernel_matches_reference_on_full_width_stacks(sizes):
    # The hypothesis test above stays below 24 units; these widths run the kernel's
    # vectorised main loops over many SIMD blocks, its row pairs and an odd last row.
    rng = np.random.default_rng(len(sizes))
    net = HebbianNetwork(sizes, rule="ABCD_lr", normalize=sizes[0] == 648, weight_limit=1e30)
    params = rng.uniform(-0.05, 0.05, net.num_params).astype(np.float32)
    net.set_params(params)
    net.reset(3)
    w0 = [w.copy() for w in net.weights]
    inputs = rng.uniform(-1, 1, (4, sizes[0])).astype(np.float32)
    outs = [net.step(x).copy() for x in inputs]
    ref_outs, ref_ws = reference_rollout(sizes, "ABCD_lr", params, w0, inputs, net.normalize)
    for got, want in zip(outs, ref_outs):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    for got, want in zip(net.weights, ref_ws):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)

@pytest.mark.parametrize("sizes, normalize", [((9, 7, 5, 2), True), ((648, 128, 64, 3), True), ((28, 128, 64, 8), False)])
def test_weights_property_mid_episode_does_not_change_the_trajectory(sizes, normalize):
    """Reading the weights must leave the outputs bit for bit as if nobody looked: a closed-loop
    episode amplifies any rounding difference (the weight-dynamics figure plays the evaluation's
    episode only if so). Applying the pending update in place, as a reader once did, changed the
    next forward sums' rounding."""
    rng = np.random.default_rng(3)
    a, b = HebbianNetwork(sizes, normalize=normalize), HebbianNetwork(sizes, normalize=normalize)
    params = rng.uniform(-1, 1, a.num_params).astype(np.float32)
    for net in (a, b):
        net.set_params(params)
        net.reset(7)
    assert all(np.array_equal(wa, wb) for wa, wb in zip(a.weights, b.weights))
    for t in range(12):
        x = rng.uniform(-1, 1, sizes[0]).astype(np.float32)
        ya, yb = a.step(x).copy(), b.step(x).copy()
        np.testing.assert_array_equal(ya, yb)
        if t % 3 == 0:
            seen = b.weights
            for w in seen:  # copies: writing to them changes nothing either
                w[...] = 0.0
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa, wb)


def test_parameter_layout_counts_and_views():
    net = HebbianNetwork((648, 128, 64, 3), rule="ABCD_lr")
    assert net.num_params == 456_640 and net.num_synapses == 91_328
    assert HebbianNetwork((28, 128, 64, 8), rule="ABCD_lr").num_params == 61_440
    assert HebbianNetwork((4, 3, 2), rule="AD").num_params == (12 + 6) * 2
    coevo = HebbianNetwork((4, 3, 2), rule="A", init="coevolve")
    assert coevo.num_params == 18 + 18

    small = HebbianNetwork((4, 3, 2), rule="ABCD_lr")
    flat = np.arange(small.num_params, dtype=np.float32)
    small.set_params(flat)
    c0, c1 = small.coefficients
    assert c0.shape == (4, 3, 5) and c1.shape == (3, 2, 5)
    # Layout: layer 0's synapse (i, j), term t at (i*3 + j)*5 + t; layer 1 follows.
    assert c0[2, 1, 3] == (2 * 3 + 1) * 5 + 3
    assert c1[0, 0, 0] == 60
    assert np.shares_memory(c0, flat)


def test_set_params_keeps_a_view():
    sizes = (5, 4, 3)
    net = HebbianNetwork(sizes, rule="ABCD_lr")
    flat = np.full(net.num_params, 0.1, dtype=np.float32)
    net.set_params(flat)
    x = np.ones(5, dtype=np.float32)
    net.reset(0)
    net.step(x)
    y_before = net.step(x).copy()
    flat[:] = 0.9  # the network sees the change without another set_params
    net.reset(0)
    net.step(x)
    assert not np.allclose(net.step(x), y_before)

    static = StaticNetwork(sizes)
    w = np.zeros(static.num_params, dtype=np.float32)
    static.set_params(w)
    assert np.all(static.step(x) == 0)
    w[:] = 0.5
    assert np.all(static.step(x) != 0)


def test_reset_determinism_and_inits():
    net = HebbianNetwork((6, 5, 4), init="uniform", init_scale=0.1)
    net.set_params(np.zeros(net.num_params, dtype=np.float32))
    net.reset(11)
    a = [w.copy() for w in net.weights]
    net.reset(11)
    assert all(np.array_equal(x, y) for x, y in zip(a, net.weights))
    net.reset(12)
    assert not np.array_equal(a[0], net.weights[0])
    assert all(np.abs(w).max() <= 0.1 and w.dtype == np.float32 for w in a)

    xav = HebbianNetwork((6, 5, 4), init="xavier")
    xav.set_params(np.zeros(xav.num_params, dtype=np.float32))
    xav.reset(1)
    assert np.abs(xav.weights[0]).max() <= np.sqrt(6 / 11)

    coevo = HebbianNetwork((3, 2), rule="A", init="coevolve")
    params = np.zeros(coevo.num_params, dtype=np.float32)
    params[6:] = np.arange(6)
    coevo.set_params(params)
    coevo.reset(99)
    np.testing.assert_array_equal(coevo.weights[0], np.arange(6, dtype=np.float32).reshape(3, 2))


@pytest.mark.parametrize("normalize", [False, True])
def test_divergence_guard_keeps_outputs_finite(normalize):
    net = HebbianNetwork((8, 16, 4), rule="ABCD", normalize=normalize, weight_limit=100.0)
    net.set_params(np.full(net.num_params, 1e20, dtype=np.float32))
    net.reset(0)
    x = np.ones(8, dtype=np.float32)
    for _ in range(20):
        y = net.step(x)
        assert np.all(np.isfinite(y))
    assert net.diverged
    assert all(np.all(np.isfinite(w)) and np.abs(w).max() <= 100.0 for w in net.weights)
    net.reset(0)
    assert not net.diverged


def test_static_network_matches_numpy():
    rng = np.random.default_rng(0)
    net = StaticNetwork((7, 6, 3), activation="tanh")
    flat = rng.normal(size=net.num_params).astype(np.float32)
    net.set_params(flat)
    x = rng.normal(size=7).astype(np.float32)
    w0, w1 = flat[:42].reshape(7, 6), flat[42:].reshape(6, 3)
    np.testing.assert_allclose(net.step(x), np.tanh(x @ w0) @ w1, rtol=1e-5)


@pytest.mark.parametrize("sizes", [(7, 6, 3), (648, 128, 64, 3), (28, 128, 64, 8), (1, 33, 1)])
def test_static_network_sums_input_by_input_bit_for_bit(sizes):
    # The compiled step adds x_i * w_i. to the sums input by input, each product rounded to
    # float32 and then added (no fused multiply-add, no reordering): that order is what makes it
    # the same bits on every CPU, so the reference here is that order written plainly.
    rng = np.random.default_rng(sum(sizes))
    net = StaticNetwork(sizes, activation="linear")
    flat = rng.normal(size=net.num_params).astype(np.float32)
    net.set_params(flat)
    x = rng.normal(size=sizes[0]).astype(np.float32)
    h, off = x, 0
    for a, b in zip(sizes[:-1], sizes[1:]):
        w = flat[off: off + a * b].reshape(a, b)
        off += a * b
        acc = np.zeros(b, np.float32)
        for i in range(a):
            acc = acc + h[i] * w[i]
        h = acc
    np.testing.assert_array_equal(net.step(x), h)
    assert not net.diverged


@pytest.mark.parametrize("bad", [dict(sizes=(3,)), dict(sizes=(3, 0, 2)), dict(sizes=(3, 2), rule="ABX"),
                                 dict(sizes=(3, 2), init="zeros"), dict(sizes=(3, 2), activation="gelu")])
def test_bad_configuration_is_one_clear_error(bad):
    with pytest.raises(ValueError) as err:
        HebbianNetwork(**bad)
    assert "\n" not in str(err.value)


def test_wrong_parameter_length():
    net = HebbianNetwork((3, 2))
    with pytest.raises(ValueError, match="needs 30"):
        net.set_params(np.zeros(5, dtype=np.float32))


# -- output activation ---------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 23), min_size=2, max_size=4),
    rule=st.sampled_from(RULE_NAMES),
    normalize=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_tanh_output_matches_numpy_reference(sizes, rule, normalize, seed):
    # The squashed output is both what step returns and the last layer's post-synaptic
    # activity; 20 steps let a wrong post activity build up in the weights.
    rng = np.random.default_rng(seed)
    net = HebbianNetwork(sizes, rule=rule, normalize=normalize, weight_limit=1e30, output_activation="tanh")
    params = rng.uniform(-0.5, 0.5, net.num_params).astype(np.float32)
    net.set_params(params)
    net.reset(seed)
    w0 = [w.copy() for w in net.weights]
    inputs = rng.uniform(-1, 1, (20, sizes[0])).astype(np.float32)
    outs = [net.step(x).copy() for x in inputs]
    ref_outs, ref_ws = reference_rollout(sizes, rule, params, w0, inputs, normalize, "tanh", "tanh")
    # Looser than the 6-step test above: over 20 unnormalised steps the weights grow to ~10
    # and float32 rounding of the sums, fed back through the updates, reaches ~2e-4 now and then.
    # A linear post activity in the last layer would be off by ~1e-1.
    for got, want in zip(outs, ref_outs):
        assert np.all(np.abs(got) <= 1)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    for got, want in zip(net.weights, ref_ws):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    assert not net.diverged


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("sizes", [(6, 5, 4), (28, 128, 64, 8)])
def test_relu_output_matches_numpy_reference(sizes, normalize):
    rng = np.random.default_rng(sum(sizes))
    net = HebbianNetwork(sizes, rule="ABCD_lr", normalize=normalize, weight_limit=1e30, output_activation="relu")
    params = rng.uniform(-0.05, 0.05, net.num_params).astype(np.float32)
    net.set_params(params)
    net.reset(1)
    w0 = [w.copy() for w in net.weights]
    inputs = rng.uniform(-1, 1, (8, sizes[0])).astype(np.float32)
    outs = [net.step(x).copy() for x in inputs]
    ref_outs, ref_ws = reference_rollout(sizes, "ABCD_lr", params, w0, inputs, normalize, "tanh", "relu")
    for got, want in zip(outs, ref_outs):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
    for got, want in zip(net.weights, ref_ws):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)


def bullet_reference_rollout(heb_coeffs, weights, inputs):
    """A transcription of the paper's code (enajx/HebbianMetaLearning) on a Bullet task:
    `MLP_heb.forward`, `o3 = torch.tanh(o3)` in `fitness_functions.py`, then
    `hebbian_update_ABCD_lr_D_in`, no normalisation. Plain Python floats and loops.

    heb_coeffs: rows of 5 values, the row of synapse (i pre, j post) of layer l at
    offset_l + i * n_out + j, columns in the paper's order for ABCD_lr: A, B, C, eta, D.
    weights: per layer, torch's nn.Linear layout, weights[l][j][i] (n_out rows of n_in);
    updated in place. Returns the actions (o3) of every step.
    """
    actions = []
    for x in inputs:
        o = [[float(v) for v in x]]
        for W in weights:                      # x1 = tanh(fc1(x)), x2 = tanh(fc2(x1)), o3 = tanh(fc3(x2))
            o.append([math.tanh(sum(W[j][i] * o[-1][i] for i in range(len(W[j])))) for j in range(len(W))])
        actions.append(o[3])
        heb_offset = 0
        for layer, W in enumerate(weights):
            n_out, n_in = len(W), len(W[0])
            for i in range(n_in):
                for j in range(n_out):
                    idx = heb_offset + (n_out - 1) * i + i + j
                    A, B, C, eta, D = heb_coeffs[idx]
                    W[j][i] += eta * (A * o[layer][i] * o[layer + 1][j] + B * o[layer][i]
                                      + C * o[layer + 1][j] + D)
            heb_offset += n_in * n_out
    return actions


def test_tanh_output_matches_a_transcription_of_the_papers_bullet_code():
    sizes = (5, 4, 3, 2)
    rng = np.random.default_rng(2020)
    net = HebbianNetwork(sizes, rule="ABCD_lr", normalize=False, output_activation="tanh")
    params = rng.uniform(-1, 1, net.num_params).astype(np.float32)
    net.set_params(params)
    net.reset(4)
    w0 = [w.copy() for w in net.weights]
    # Ours: (A, B, C, D, eta) per synapse (hebbian.rules); the paper's ABCD_lr rows: (A, B, C, eta, D).
    ours = params.reshape(-1, 5).astype(np.float64)
    heb_coeffs = [[a, b, c, eta, d] for a, b, c, d, eta in ours.tolist()]
    ref_weights = [w.T.astype(np.float64).tolist() for w in w0]
    inputs = rng.uniform(-2, 2, (10, sizes[0])).astype(np.float32)
    actions = bullet_reference_rollout(heb_coeffs, ref_weights, inputs)
    for x, want in zip(inputs, actions):
        np.testing.assert_allclose(net.step(x), want, rtol=1e-4, atol=1e-5)
    for got, want in zip(net.weights, ref_weights):
        np.testing.assert_allclose(got, np.array(want).T, rtol=1e-4, atol=1e-5)

    # The comparison can tell: with a linear output, the last layer's update differs.
    linear = HebbianNetwork(sizes, rule="ABCD_lr", normalize=False)
    linear.set_params(params)
    linear.reset(4)
    for x in inputs:
        linear.step(x)
    assert not np.allclose(linear.weights[-1], np.array(ref_weights[-1]).T, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("output_activation", ["tanh", "relu", "linear"])
@pytest.mark.parametrize("sizes", [(7, 6, 3), (4, 2), (10, 8, 6, 5)])
def test_static_network_output_activation(sizes, output_activation):
    rng = np.random.default_rng(len(sizes))
    net = StaticNetwork(sizes, activation="tanh", output_activation=output_activation)
    flat = rng.normal(size=net.num_params).astype(np.float32)
    net.set_params(flat)
    x = rng.normal(size=sizes[0])
    h, off = x.astype(np.float64), 0
    for layer, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        h = h @ flat[off: off + a * b].reshape(a, b).astype(np.float64)
        off += a * b
        if layer < len(sizes) - 2:
            h = np.tanh(h)
    want = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "linear": lambda v: v}[output_activation](h)
    np.testing.assert_allclose(net.step(x.astype(np.float32)), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [HebbianNetwork, StaticNetwork])
def test_output_activation_default_and_bad_name(cls):
    assert cls((3, 2)).output_activation == "linear"
    with pytest.raises(ValueError, match="unknown activation 'sigmoid'") as err:
        cls((3, 2), output_activation="sigmoid")
    assert "\n" not in str(err.value)
