"""CarRacing from pixels: frame layout and range, the resize, early termination, seeding."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless: no window, no display needed

import numpy as np
import pytest

import envs
from envs.car_racing import area_resize_matrix

GAS = np.array([0.0, 1.0, 0.0], dtype=np.float32)
BRAKE = np.array([0.0, 0.0, 0.8], dtype=np.float32)


def scripted(step: int) -> np.ndarray:
    """Drive forward (new tiles: positive rewards) for 30 steps, then brake (only -0.1 per frame)."""
    return GAS if step < 30 else BRAKE


@pytest.mark.parametrize("frame_size", [84, 96])
def test_observation_is_float32_chw_in_unit_range(frame_size):
    env = envs.make("CarRacing-v3", frame_size=frame_size)
    assert env.observation_space.shape == (3, frame_size, frame_size)
    assert env.observation_space.dtype == np.float32
    obs, _ = env.reset(seed=1)
    for t in range(5):
        obs, *_ = env.step(scripted(t))
    assert obs.shape == (3, frame_size, frame_size) and obs.dtype == np.float32
    assert obs.min() >= 0.0 and obs.max() <= 1.0
    assert obs.std() > 0.05  # a real picture (grass, road, dashboard), not a blank frame
    assert obs.flags.c_contiguous
    env.close()


@pytest.mark.parametrize("frame_size", [84, 96])
def test_frame_is_area_average_of_the_full_96_frame(frame_size):
    env = envs.make("CarRacing-v3", frame_size=frame_size)
    env.reset(seed=2)
    for t in range(3):
        obs, *_ = env.step(scripted(t))
    native = env.unwrapped.state.astype(np.float64) / 255.0  # the (96, 96, 3) uint8 frame just rendered
    resize = area_resize_matrix(96, frame_size)
    expected = np.einsum("ih,hwc,jw->cij", resize, native, resize)
    np.testing.assert_allclose(obs, expected, atol=1e-5)
    env.close()


def test_area_resize_matrix_averages_by_overlap():
    # An integer factor is a plain block mean.
    np.testing.assert_allclose(area_resize_matrix(96, 48), np.kron(np.eye(48), [[0.5, 0.5]]))
    resize = area_resize_matrix(96, 84)
    np.testing.assert_allclose(resize.sum(axis=1), 1.0)
    # Independent reference: split every input pixel into 84 equal sub-pixels; output pixel
    # i is then exactly the mean of sub-pixels [96 i, 96 (i + 1)).
    signal = np.random.default_rng(0).uniform(size=96)
    np.testing.assert_allclose(resize @ signal, np.repeat(signal, 84).reshape(84, 96).mean(axis=1))
    with pytest.raises(ValueError, match="only shrinks"):
        area_resize_matrix(84, 96)


def run_scripted(neg_reward_limit, steps, seed=3):
    env = envs.make("CarRacing-v3", neg_reward_limit=neg_reward_limit, max_episode_steps=steps)
    env.reset(seed=seed)
    rewards, end = [], None
    for t in range(steps):
        _, reward, terminated, truncated, info = env.step(scripted(t))
        rewards.append(reward)
        if terminated or truncated:
            end = (t, terminated, truncated, info)
            break
    env.close()
    return rewards, end


def test_early_stop_after_more_than_limit_negative_rewards_in_a_row():
    rewards, end = run_scripted(neg_reward_limit=None, steps=80)
    assert end[:3] == (79, False, True) and "early_stop" not in end[3]  # only the time limit
    assert any(r > 0 for r in rewards[:30])  # driving collected tiles, which reset the count
    # The rule, written out on the rewards of the uncut run: the episode ends on the first
    # step that makes the run of negative rewards longer than 20.
    run, expected = 0, None
    for t, reward in enumerate(rewards):
        run = run + 1 if reward < 0 else 0
        if run > 20:
            expected = t
            break
    assert expected is not None and expected > 30

    cut_rewards, cut_end = run_scripted(neg_reward_limit=20, steps=80)
    assert cut_end[0] == expected
    assert cut_end[1:3] == (False, True) and cut_end[3]["early_stop"] == "negative_run"
    assert cut_rewards == rewards[: expected + 1]


def test_same_seed_same_observations_other_seed_other_track():
    def observations(seed):
        env = envs.make("CarRacing-v3")
        frames = [env.reset(seed=seed)[0]]
        for t in range(20):
            frames.append(env.step(scripted(t))[0])
        env.close()
        return np.stack(frames)

    first = observations(7)
    np.testing.assert_array_equal(first, observations(7))
    assert not np.array_equal(first, observations(8))


