"""LSTMNetwork against torch.nn.LSTM + nn.Linear + tanh with the parameters in the authors' layout."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from authors_torch import load_authors_layout
from hebbian.lstm import LSTMNetwork

torch.set_num_threads(1)


def torch_controller(flat, sizes):
    """The authors' LSTMStack (one layer) with their set_params: layers in order, each
    state_dict's keys sorted, each tensor taken raveled from the flat vector."""
    n_in, n_h, n_out = sizes
    lstm, fc = torch.nn.LSTM(input_size=n_in, hidden_size=n_h, num_layers=1), torch.nn.Linear(n_h, n_out)
    load_authors_layout([lstm, fc], flat)
    return lstm, fc


def torch_rollout(flat, sizes, inputs, output_activation="tanh"):
    lstm, fc = torch_controller(flat, sizes)
    hidden = (torch.zeros((1, 1, sizes[1])), torch.zeros((1, 1, sizes[1])))
    outputs = []
    with torch.no_grad():
        for x in inputs:
            out, hidden = lstm(torch.from_numpy(x).view(1, 1, -1), hidden)
            y = fc(torch.flatten(out, start_dim=0, end_dim=-1))
            outputs.append((torch.tanh(y) if output_activation == "tanh" else y).numpy())
    return np.array(outputs), hidden[0].reshape(-1).numpy(), hidden[1].reshape(-1).numpy()


def test_param_count_and_layout():
    net = LSTMNetwork((20, 16, 3))
    assert net.sizes == (20, 16, 3)
    assert net.num_params == 4 * 16 * (20 + 16 + 2) + 3 * (16 + 1) == 2483
    lstm, fc = torch_controller(np.zeros(2483, np.float32), (20, 16, 3))
    expected = [(k, tuple(v.shape)) for layer in (lstm, fc) for k, v in sorted(layer.state_dict().items())]
    assert [(k, shape) for k, (_, shape) in net.layout.items()] == expected


@pytest.mark.parametrize("sizes", [(20, 16, 3), (5, 8, 2), (1, 1, 1), (7, 3, 9)])
@pytest.mark.parametrize("output_activation", ["tanh", "linear"])
def test_matches_torch(sizes, output_activation):
    rng = np.random.default_rng([*sizes, output_activation == "tanh"])
    net = LSTMNetwork(sizes, output_activation=output_activation)
    for scale in (1.0, 3.0):  # torch's init range and well beyond it (saturated gates)
        flat = (net.initial_params(int(rng.integers(1 << 30))) * scale).astype(np.float32)
        inputs = rng.uniform(-2, 2, (30, sizes[0])).astype(np.float32)
        net.set_params(flat)
        net.reset(0)
        got = np.array([net.step(x).copy() for x in inputs])
        want, h, c = torch_rollout(flat, sizes, inputs, output_activation)
        assert got.dtype == np.float32 and got.shape == (30, sizes[2])
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        np.testing.assert_allclose(net.state[0], h, atol=1e-5, rtol=0)
        np.testing.assert_allclose(net.state[1], c, atol=1e-5, rtol=0)
        assert not net.diverged


def test_reset_zeroes_the_state():
    rng = np.random.default_rng(1)
    net = LSTMNetwork((20, 16, 3))
    net.set_params(net.initial_params(2))
    inputs = rng.random((12, 20), dtype=np.float32)
    net.reset(0)
    first = np.array([net.step(x).copy() for x in inputs])
    assert np.abs(net.state[1]).max() > 0
    net.reset(123)  # the seed is unused: the same outputs again
    assert not net.state[0].any() and not net.state[1].any()
    np.testing.assert_array_equal(np.array([net.step(x).copy() for x in inputs]), first)
    # Without a reset the state carries over, so the outputs differ.
    assert not np.allclose(np.array([net.step(x).copy() for x in inputs]), first)


def test_params_are_a_view_read_every_step():
    net = LSTMNetwork((4, 3, 2))
    flat = net.initial_params(0)
    net.set_params(flat)
    assert all(np.shares_memory(w, flat) for w in net.weights)
    assert [w.shape for w in net.weights] == [(4, 12), (3, 12), (3, 2)]
    np.testing.assert_array_equal(net.weights[0], net.param("weight_ih_l0").T)
    x = np.ones(4, np.float32)
    net.reset()
    a = net.step(x).copy()
    net.reset()
    flat[net.layout["bias"][0]] += 0.5  # the first output's bias, read at the next step
    b = net.step(x).copy()
    np.testing.assert_allclose(np.arctanh(b) - np.arctanh(a), [0.5, 0.0], atol=1e-5)


def test_initial_params_follow_torch_defaults():
    net = LSTMNetwork((20, 16, 3))
    p = net.initial_params(7)
    bound = 1 / math.sqrt(16)  # LSTM: 1/sqrt(hidden); Linear(16, 3): 1/sqrt(in_features) = the same
    assert p.dtype == np.float32 and p.shape == (2483,)
    assert np.abs(p).max() <= bound and np.abs(p).max() > 0.99 * bound
    assert abs(p.mean()) < 4 * bound / math.sqrt(3 * p.size)  # U(-b, b): std b / sqrt(3)
    assert p.var() == pytest.approx(bound**2 / 3, rel=0.1)
    np.testing.assert_array_equal(p, net.initial_params(7))
    assert not np.array_equal(p, net.initial_params(8))
    # torch's own default init has the same range (a sanity check of the bound).
    lstm, fc = torch.nn.LSTM(20, 16), torch.nn.Linear(16, 3)
    theirs = np.concatenate([t.detach().numpy().ravel() for t in (*lstm.parameters(), *fc.parameters())])
    assert np.abs(theirs).max() <= bound + 1e-7


def test_non_finite_values_set_the_flag_and_stay_finite():
    net = LSTMNetwork((3, 4, 2))
    flat = net.initial_params(0)
    flat[net.layout["weight_ih_l0"][0]] = np.nan
    net.set_params(flat)
    net.reset()
    for _ in range(3):
        out = net.step(np.ones(3, np.float32))
        assert np.isfinite(out).all() and np.isfinite(net.state[0]).all() and np.isfinite(net.state[1]).all()
    assert net.diverged
    net.set_params(net.initial_params(0))
    net.reset()
    net.step(np.ones(3, np.float32))
    assert not net.diverged


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_in, hidden, n_out"):
        LSTMNetwork((20, 3))
    with pytest.raises(ValueError, match="n_in, hidden, n_out"):
        LSTMNetwork((20, 16, 8, 3))
    with pytest.raises(ValueError, match="activation"):
        LSTMNetwork((20, 16, 3), output_activation="softmax")
    net = LSTMNetwork((20, 16, 3))
    with pytest.raises(RuntimeError, match="set_params"):
        net.step(np.zeros(20, np.float32))
    with pytest.raises(ValueError, match="2483"):
        net.set_params(np.zeros(10, np.float32))
    net.set_params(np.zeros(2483, np.float32))
    with pytest.raises(ValueError, match="shape"):
        net.step(np.zeros(19, np.float32))
