"""CarRacing from pixels: frame layout and range, the resize, early termination, seeding."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless: no window, no display needed

import numpy as np
import pytest

import envs
from envs.car_racing import PixelObservation, _column_block_weights, area_resize, area_resize_matrix, area_resize_taps

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


def exact_area_mean(frames_hwc: np.ndarray, size: int) -> np.ndarray:
    """The definition in float64: (..., H, W, C) uint8 -> (..., C, size, size), overlap-weighted means / 255."""
    rows = area_resize_matrix(frames_hwc.shape[-3], size)
    cols = area_resize_matrix(frames_hwc.shape[-2], size)
    return np.einsum("ih,...hwc,jw->...cij", rows, frames_hwc / 255.0, cols)


@pytest.mark.parametrize("source, target", [(96, 84), (96, 96), (96, 64), (96, 50), (96, 17), (96, 16), (84, 83), (7, 3)])
def test_area_resize_taps_are_the_matrix_in_whole_numbers(source, target):
    first, weights = area_resize_taps(source, target)
    assert weights.dtype == np.float32 and np.array_equal(weights, np.round(weights))
    assert first.min() >= 0 and first.max() + weights.shape[1] <= source  # every tap inside the signal
    dense = np.zeros((target, source))
    for i in range(target):
        dense[i, first[i]: first[i] + weights.shape[1]] = weights[i]
    np.testing.assert_allclose(dense / source, area_resize_matrix(source, target), rtol=0, atol=1e-12)
    assert area_resize_taps(96, 84)[1].shape == (84, 2)  # 96 -> 84 reads 2 x 2 input pixels per output pixel


@pytest.mark.parametrize("size", [84, 96, 64, 50, 17, 16])
def test_uint8_resize_is_the_exact_mean_to_one_ulp_for_every_layout(size):
    rng = np.random.default_rng(size)
    frames = rng.integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
    frames[0, :8] = 255  # saturated rows: the mean must come out as exactly 1, never above
    frames[1, -8:] = 0
    expected = exact_area_mean(frames, size)
    ulp = np.spacing(expected.astype(np.float32))

    one = area_resize(frames[0].transpose(2, 0, 1), size)  # a channels-first view, no copy
    assert one.shape == (3, size, size) and one.dtype == np.float32 and one.flags.c_contiguous
    assert np.all(np.abs(one - expected[0]) <= ulp[0]) and one.max() == 1.0 and one.min() >= 0.0
    other = area_resize(frames[1].transpose(2, 0, 1), size)
    assert np.array_equal(area_resize(frames.transpose(0, 3, 1, 2), size), np.stack([one, other]))  # a batch
    # Channels-first contiguous planes and a single 2-D plane take the C = 1 route: same numbers.
    assert np.array_equal(area_resize(np.ascontiguousarray(frames[0].transpose(2, 0, 1)), size), one)
    assert np.array_equal(area_resize(frames[0, :, :, 1], size), one[1])


@pytest.mark.parametrize("width,size", [(96, 84), (48, 42), (64, 56), (16, 14), (8, 7)])
def test_column_blocks_give_the_scalar_paths_numbers(width, size):
    # Sizes with 7 output columns per 8 input columns (96 -> 84, the paper's) resize 3-channel
    # frames with vector shuffles (_column_block); one plane at a time (C = 1) takes the scalar
    # loop. Both must give the exact mean (to 1.5 ulp at these sizes, see area_resize), never
    # above 1, and the same bits.
    assert _column_block_weights(width, size, *area_resize_taps(width, size))[0].shape == (8,)
    rng = np.random.default_rng(width)
    frames = rng.integers(0, 256, (3, width, width, 3), dtype=np.uint8)
    frames[0] = 255
    frames[1, ::2] = 0
    expected = exact_area_mean(frames, size)
    blocks = area_resize(frames.transpose(0, 3, 1, 2), size)
    assert np.all(np.abs(blocks - expected) <= 1.5 * np.spacing(expected.astype(np.float32))) and blocks.max() == 1.0
    for frame, out in zip(frames, blocks):
        assert np.array_equal(area_resize(frame.transpose(2, 0, 1), size), out)  # the env's one-frame path
        for c in range(3):
            assert np.array_equal(area_resize(np.ascontiguousarray(frame[:, :, c]), size), out[c])


def test_pixel_observation_takes_any_frame_layout_with_the_same_numbers():
    # The env's C-contiguous uint8 frame goes straight to the kernel; a strided view, another
    # integer type or a float frame go through area_resize; the kernel's scratch is reused
    # across calls, so a frame's numbers must not depend on the frames resized before it.
    env = envs.make("CarRacing-v3", frame_size=84, neg_reward_limit=None)
    wrapper = env
    while not isinstance(wrapper, PixelObservation):
        wrapper = wrapper.env
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    expected = [area_resize(frame.transpose(2, 0, 1), 84) for frame in frames]
    for frame, want in zip(frames[::-1], expected[::-1]):
        assert np.array_equal(wrapper.observation(frame), want)
        flipped = frame[::-1]
        assert np.array_equal(wrapper.observation(flipped), area_resize(np.ascontiguousarray(flipped).transpose(2, 0, 1), 84))
        np.testing.assert_allclose(wrapper.observation(frame.astype(np.float32) / 255), want, atol=2e-7)
        np.testing.assert_allclose(wrapper.observation(frame.astype(np.int16)), want, atol=2e-7)
    env.close()


def test_column_blocks_only_where_the_taps_repeat_every_7_of_8():
    for size in (83, 85, 64, 50, 48, 16, 96):
        assert _column_block_weights(96, size, *area_resize_taps(96, size))[0].shape == (0,)


def test_uint8_resize_agrees_with_the_matrix_path_and_torch():
    torch = pytest.importorskip("torch")
    frame = np.random.default_rng(7).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    kernel = area_resize(frame.transpose(2, 0, 1), 84)
    as_int16 = area_resize(frame.transpose(2, 0, 1).astype(np.int16), 84)  # other integer types: the matrices
    as_tensor = area_resize(torch.from_numpy(frame).permute(2, 0, 1)[None], 84)[0].numpy()  # pretraining's path
    np.testing.assert_allclose(as_int16, kernel, rtol=0, atol=1e-6)
    np.testing.assert_allclose(as_tensor, kernel, rtol=0, atol=1e-6)


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


