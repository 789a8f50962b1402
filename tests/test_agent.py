"""The paper's CNN, action heads, parameter spec and the agent fitness problem."""
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from numba import njit

from hebbian.agent import (AgentConfig, AgentProblem, BoxHead, CarRacingHead, DiscreteHead, ParamSpec, Policy,
                           episode_seeds)
from hebbian.encoders import make_encoder
from hebbian.encoders.cnn import PaperCNN
from hebbian.portable_math import fma32, tanh32_array


def torch_paper_cnn(frame, flat):
    """The paper's CNN written plainly with torch.nn.functional (float64)."""
    x = torch.from_numpy(frame.astype(np.float64))[None]
    w1 = torch.from_numpy(flat[:162].astype(np.float64)).view(6, 3, 3, 3)
    w2 = torch.from_numpy(flat[162:].astype(np.float64)).view(8, 6, 5, 5)
    x = F.max_pool2d(torch.tanh(F.conv2d(x, w1)), 2)
    x = F.max_pool2d(torch.tanh(F.conv2d(x, w2, stride=2)), 2)
    return x.reshape(-1).numpy()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([0.05, 0.3, 2.0]))
def test_cnn_matches_torch(seed, scale):
    rng = np.random.default_rng(seed)
    cnn = make_encoder("cnn")
    assert cnn.num_params == 1362 and cnn.num_features == 648
    flat = rng.uniform(-scale, scale, cnn.num_params).astype(np.float32)
    frame = rng.random((3, 84, 84), dtype=np.float32)
    cnn.set_params(flat)
    # float32 sums of up to 150 products of size ~scale: error grows with the scale.
    np.testing.assert_allclose(cnn.encode(frame), torch_paper_cnn(frame, flat), rtol=1e-5, atol=5e-6 * max(1.0, scale))


@njit
def _fma_conv(x, w, stride):
    """(C, H, W) x (O, C, K, K) -> (O, Ho, Wo), no padding: each output one running sum from
    +0.0 over (c, ky, kx) in C order, each step a fused multiply-add, one output at a time."""
    n_out, n_in, k = w.shape[0], w.shape[1], w.shape[2]
    ho, wo = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = np.empty((n_out, ho, wo), np.float32)
    for o in range(n_out):
        for y in range(ho):
            for z in range(wo):
                s = np.float32(0.0)
                for c in range(n_in):
                    for ky in range(k):
                        for kx in range(k):
                            s = fma32(w[o, c, ky, kx], x[c, y * stride + ky, z * stride + kx], s)
                out[o, y, z] = s
    return out


def _pool(x):
    n, h, w = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2).max(axis=(2, 4))


@pytest.mark.parametrize("seed, scale", [(0, 0.05), (1, 0.3), (2, 2.0), (3, 20.0)])
def test_cnn_is_the_plain_fused_convolution_bit_for_bit(seed, scale):
    # The kernels' arithmetic as the cnn module states it, written one output at a time in
    # the order of torch's layers (conv, tanh, pool): every bit the same, whatever the
    # blocking, vector width and pooling-before-tanh of the kernels.
    rng = np.random.default_rng(seed)
    flat = rng.uniform(-scale, scale, PaperCNN.num_params).astype(np.float32)
    cnn = PaperCNN()
    cnn.set_params(flat)
    w1, w2 = flat[:162].reshape(6, 3, 3, 3), flat[162:].reshape(8, 6, 5, 5)
    frames = [rng.random((3, 84, 84), dtype=np.float32),
              (rng.integers(0, 256, (3, 84, 84)) / np.float32(255)).astype(np.float32), np.zeros((3, 84, 84), np.float32)]
    for frame in frames:
        hidden = _pool(tanh32_array(_fma_conv(frame, w1, 1)))
        expected = _pool(tanh32_array(_fma_conv(hidden, w2, 2))).reshape(-1)
        assert np.array_equal(cnn.encode(frame).view(np.uint32), expected.view(np.uint32))


def test_cnn_uses_the_flat_vector_as_a_view():
    cnn = PaperCNN()
    flat = np.full(cnn.num_params, 0.1, dtype=np.float32)
    frame = np.random.default_rng(0).random((3, 84, 84), dtype=np.float32)
    cnn.set_params(flat)
    before = cnn.encode(frame).copy()
    flat[162:] *= -1
    assert not np.allclose(cnn.encode(frame), before)
    with pytest.raises(ValueError, match="shape"):
        cnn.encode(np.zeros((3, 96, 96), dtype=np.float32))


def test_cnn_on_resized_env_frames_matches_torch_and_is_repeatable():
    # Frames as the env makes them (uint8, area-resized: flat regions, exact 0 and 1), weights
    # up to the scale where tanh saturates; the kernels' buffers are reused across calls, so
    # a frame's features must not depend on what was encoded before it.
    from envs.car_racing import area_resize
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)
    raw[0] = 0
    raw[1, :40] = 255
    frames = [area_resize(f.transpose(2, 0, 1), 84) for f in raw]
    for scale in (0.1, 1.0, 5.0):
        flat = rng.uniform(-scale, scale, PaperCNN.num_params).astype(np.float32)
        cnn, other = PaperCNN(), PaperCNN()
        cnn.set_params(flat)
        other.set_params(flat[::-1].copy()[::-1])  # a non-contiguous vector is copied once, same weights
        first = [cnn.encode(f).copy() for f in frames]
        for frame, features in zip(frames[::-1], first[::-1]):
            assert np.array_equal(cnn.encode(frame), features)
            assert np.array_equal(other.encode(np.asfortranarray(frame)), features)  # any layout, same bits
            np.testing.assert_allclose(features, torch_paper_cnn(frame, flat), rtol=1e-5, atol=5e-6 * max(1.0, scale))


def test_paper_parameter_counts():
    car = AgentProblem("CarRacing-v3", AgentConfig(encoder="cnn"))
    assert car.policy.spec.sizes() == {"encoder": 1362, "network": 456_640}
    assert car.num_params == 458_002
    ant = AgentProblem("AntBulletEnv-v0", AgentConfig(normalize=False))
    assert ant.num_params == 61_440
    static = AgentProblem("AntBulletEnv-v0", AgentConfig(network="static"))
    assert static.num_params == 28 * 128 + 128 * 64 + 64 * 8


def test_param_spec_views():
    spec = ParamSpec((("encoder", 3), ("network", 5)))
    flat = np.arange(8, dtype=np.float32)
    views = spec.split(flat)
    assert spec.num_params == 8 and list(views["network"]) == [3, 4, 5, 6, 7]
    views["encoder"][0] = 42
    assert flat[0] == 42
    with pytest.raises(ValueError, match="needs"):
        spec.split(np.zeros(7, dtype=np.float32))


def test_policy_params_are_views_of_one_vector():
    env = gym.make("CartPole-v1")
    policy = Policy(AgentConfig(hidden=(8,)), env.observation_space, env.action_space)
    flat = np.zeros(policy.num_params, dtype=np.float32)
    policy.set_params(flat)
    flat[:] = 0.3
    assert np.all(policy.network.coefficients[0] == np.float32(0.3))


def test_action_heads():
    y = np.array([0.5, -2.0, 3.0], dtype=np.float32)
    a = CarRacingHead()(y)
    np.testing.assert_allclose(a, [np.tanh(0.5), 1 / (1 + np.exp(2.0)), 1 / (1 + np.exp(-3.0))], rtol=1e-6)
    assert DiscreteHead(gym.spaces.Discrete(3, start=1))(y) == 3
    box = gym.spaces.Box(low=np.array([0.0, -2.0, -np.inf]), high=np.array([4.0, 2.0, np.inf]), dtype=np.float32)
    out = BoxHead(box)(y)
    np.testing.assert_allclose(out, [(np.tanh(0.5) + 1) * 2, np.tanh(-2.0) * 2, 3.0], rtol=1e-6)
    assert box.contains(out)


def test_episode_seeds_are_independent_streams():
    env_a, w_a = episode_seeds(1)
    env_b, w_b = episode_seeds(2)
    assert len({env_a, w_a, env_b, w_b}) == 4 and episode_seeds(1) == (env_a, w_a)


def test_agent_problem_is_pure_and_picklable():
    problem = AgentProblem("CartPole-v1", AgentConfig(hidden=(16,)), coeff_penalty=0.0, centre_init="uniform",
                           centre_init_scale=0.1)
    params = problem.initial_params(0)
    assert params.dtype == np.float32 and np.abs(params).max() <= 0.1
    first = problem.evaluate(params, [3, 4])
    assert problem.evaluate(params, [3, 4]) == first
    clone = pickle.loads(pickle.dumps(problem))
    assert clone.evaluate(params, [3, 4]) == first
    fitness, steps, returns = first
    assert len(returns) == 2 and fitness == pytest.approx(np.mean(returns)) and steps == sum(returns)  # CartPole: +1 per step
    assert problem.evaluate(params, [5, 6]) != first


def test_coefficient_penalty():
    plain = AgentProblem("CartPole-v1", AgentConfig(hidden=(4,)), coeff_penalty=0.0)
    penalised = AgentProblem("CartPole-v1", AgentConfig(hidden=(4,)), coeff_penalty=0.01)
    params = plain.initial_params(1) * 10
    f0, _, r0 = plain.evaluate(params, [0])
    f1, _, r1 = penalised.evaluate(params, [0])
    assert r0 == r1
    assert f1 == pytest.approx(f0 - 0.01 * np.mean(params.astype(np.float64) ** 2), rel=1e-6)


def test_carracing_agent_runs_headless():
    problem = AgentProblem("CarRacing-v2", AgentConfig(encoder="cnn"), env_options={"neg_reward_limit": 20})
    fitness, steps, returns = problem.evaluate(problem.initial_params(0), [7])
    assert np.isfinite(fitness) and 0 < steps <= 1000


def test_multi_morphology_fitness_is_the_mean():
    cfg = AgentConfig(network="static", hidden=(8,))
    options = {"max_episode_steps": 120}
    both = AgentProblem("AntBulletEnv-v0", cfg, env_options=options, morphologies=["healthy", "damaged-right"],
                        coeff_penalty=0.0)
    params = both.initial_params(2)
    fitness, _, returns = both.evaluate(params, [1])
    singles = [AgentProblem("AntBulletEnv-v0", cfg, env_options={**options, "morphology": m},
                            coeff_penalty=0.0).evaluate(params, [1])[0]
               for m in ("healthy", "damaged-right")]
    assert returns == pytest.approx(tuple(singles))
    assert fitness == pytest.approx(np.mean(singles))


def test_unsupported_encoder_input_is_a_clear_error():
    with pytest.raises(ValueError, match="takes observations of shape"):
        AgentProblem("CartPole-v1", AgentConfig(encoder="cnn")).num_params
