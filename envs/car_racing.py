"""CarRacing from pixels, as in the paper: float32 3x84x84 frames and the early stop for training.

Observation (``frame_size``)
    CarRacing renders a 96x96x3 uint8 frame (the road view in the top 84 rows, the
    dashboard with speed, ABS, steering and gyro bars in the bottom 12 rows).

    * ``frame_size=84`` (default, the paper): the *whole* 96x96 frame is resized to 84x84
      by area averaging, then scaled to [0, 1] and laid out channels-first as float32
      ``(3, 84, 84)``. This is what the reference code did (old Gym's
      ``ResizeObservation(env, 84)``, i.e. ``cv2.resize(..., INTER_AREA)``, then ``/255``);
      it is a resize, not a crop, so the dashboard stays in view, and the paper's CNN
      (3x84x84 -> 648 features) gets exactly the input size it was designed for. Each output
      pixel is the mean of the input pixels under it, weighted by overlap (96/84 = 8/7 input
      pixels per output pixel); implemented as two small matrix products, so there is no
      OpenCV dependency. One difference from the reference: it used ``np.swapaxes(obs, 0, 2)``,
      which also swaps height and width (a transposed image); we return the standard
      ``(channel, row, column)`` layout so pretrained encoders and videos see upright frames.
      For a CNN evolved from scratch the two are equivalent.
    * ``frame_size=96``: the full frame, float32 ``(3, 96, 96)`` in [0, 1], no resampling
      (for the patch self-attention encoder, whose 7x7 patches with stride 4 tile 96x96).
    * Any other size from 16 to 96 is the same area resize.

Early stop (``neg_reward_limit``)
    CarRacing gives -0.1 per frame and +1000/N per new road tile, so a car that stops or
    leaves the road only collects negative rewards. For training, the episode is truncated
    at the first step that makes the run of negative rewards longer than
    ``neg_reward_limit`` (default 20: the reference code's ``neg_count > 20``, i.e. on the
    21st negative reward in a row). Evaluation passes ``neg_reward_limit=None`` so scores
    follow the standard protocol: mean return over 100 episodes of the full 1000 steps.

Actions
    The env's own space, Box([-1, 0, 0], [1, 1, 1]) = steer, gas, brake. The agent's action
    head (`hebbian.agent.CarRacingHead`: tanh, sigmoid, sigmoid, the reference's bounding)
    is the one place where network outputs are squashed; the env never squashes again.

Rendering needs no display: frames are drawn on an off-screen pygame surface unless
``render_mode="human"``.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium
import numpy as np
from gymnasium.utils import RecordConstructorArgs

from envs.wrappers import StopAfterNegativeRun

FAST_ID = "FastCarRacing-v3"
"""Registered id of the fast, frame-identical CarRacing (see :mod:`envs.fast_car_racing`)."""

NATIVE_FRAME = 96
"""Side of CarRacing's square frame in pixels."""

DEFAULTS: dict[str, Any] = {
    "frame_size": 84,
    "neg_reward_limit": 20,
    "max_episode_steps": 1000,
    "continuous": True,
    "render_mode": None,
    "lap_complete_percent": 0.95,
    "domain_randomize": False,
    "exact_env": False,
}
"""Options of :func:`make_car_racing` with their defaults (what ``envs.make`` accepts for CarRacing)."""


def _base_car_racing(
    env_id: str = "CarRacing-v3",
    *,
    continuous: bool = True,
    render_mode: str | None = None,
    max_episode_steps: int = 1000,
    lap_complete_percent: float = 0.95,
    domain_randomize: bool = False,
    exact_env: bool = False,
) -> gymnasium.Env:
    """The plain CarRacing env with its time limit: uint8 ``(96, 96, 3)`` frames, the env's own reward.

    Every CarRacing built by this package comes from here. By default it is
    :class:`envs.fast_car_racing.FastCarRacing` (registered as ``FastCarRacing-v3``): the
    same environment, frame for frame, drawn several times faster. ``exact_env=True``, or
    an installed Gymnasium whose CarRacing the fast one no longer matches (a warning
    says so), gives Gymnasium's own.
    """
    # Here, not at the top: Box2D and the Numba rasteriser load only when a CarRacing is
    # built, not when the resize below is all a caller wants (no import cycle involved).
    from envs.fast_car_racing import FastCarRacing, car_racing_class

    if car_racing_class(exact_env) is FastCarRacing:
        env_id = FAST_ID
    return gymnasium.make(
        env_id,
        continuous=continuous,
        render_mode=render_mode,
        max_episode_steps=max_episode_steps,
        lap_complete_percent=lap_complete_percent,
        domain_randomize=domain_randomize,
    )


def area_resize_matrix(source: int, target: int) -> np.ndarray:
    """Float64 ``(target, source)`` matrix ``R`` such that ``R @ x`` area-averages a length-``source`` signal.

    Output pixel ``i`` covers the interval ``[i*s, (i+1)*s)`` of input pixels with
    ``s = source / target``; ``R[i, j]`` is the overlap of that interval with pixel ``j``
    divided by ``s``, so every row sums to 1 (OpenCV's INTER_AREA when shrinking).
    """
    if not 1 <= target <= source:
        raise ValueError(f"area resize only shrinks: target {target} must be in [1, {source}]")
    scale = source / target
    starts = np.arange(target) * scale
    ends = starts + scale
    pixels = np.arange(source)
    overlap = np.clip(np.minimum(ends[:, None], pixels[None, :] + 1) - np.maximum(starts[:, None], pixels[None, :]), 0.0, None)
    return overlap / scale


@functools.lru_cache(maxsize=64)
def area_resize_matrices(height: int, width: int, size: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray] | None:
    """Float32 ``(rows, cols)`` with ``rows @ plane @ cols`` = ``scale`` times the area resize of an
    ``(height, width)`` plane to ``(size, size)``; ``None`` when ``size == height == width`` (no resampling).

    ``rows`` is ``(size, height)`` with ``scale`` folded in (one pass, no extra temporary),
    ``cols`` is ``(width, size)``, C-contiguous. Cached and read-only: every caller shares them.
    """
    if size == height == width:
        return None
    rows = (area_resize_matrix(height, size) * scale).astype(np.float32)
    cols = np.ascontiguousarray(area_resize_matrix(width, size).T, dtype=np.float32)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


def area_resize(frames: Any, size: int, clip: bool = True) -> Any:
    """Frames ``(..., H, W)`` -> float32 ``(..., size, size)`` in [0, 1]: the one area resize.

    ``frames``: uint8 (0..255; other integer types alike) or float (already in [0, 1]), as a
    NumPy array (the env, :class:`PixelObservation`) or a torch tensor (pretraining and
    radioactive marking in ``hebbian``, batched and differentiable); the result is of the same
    kind, a tensor on the input's device. ``envs`` never imports torch: a tensor brings its own
    operations (``float``, ``new_tensor``, ``clamp_``). Integer frames are scaled by 1/255 in
    the row matrix. ``clip`` removes float32 rounding (1.0000001) above 1; radioactive
    marking, whose inputs are clamped already, passes ``clip=False``. Both kinds compute
    ``rows @ frames @ cols`` with the matrices of :func:`area_resize_matrices`, so they agree
    up to float rounding (~1e-7).
    """
    if isinstance(frames, np.ndarray):
        integer = np.issubdtype(frames.dtype, np.integer)
        x = np.ascontiguousarray(frames, dtype=np.float32)  # one pass from a transposed view; no copy if float32
    else:
        integer = not frames.is_floating_point()
        x = frames.float()
    scale = 1 / 255 if integer else 1.0
    matrices = area_resize_matrices(x.shape[-2], x.shape[-1], size, scale)
    if matrices is None:
        out = x * scale  # a new array: callers may write into the result
    elif isinstance(x, np.ndarray):
        # Per channel R (size, H) @ plane (H, W) @ C (W, size): two batched matmuls,
        # about 1.4x faster than the tensordot pair over the (H, W, C) frame.
        out = matrices[0] @ x @ matrices[1]
    else:
        out = x.new_tensor(matrices[0]) @ x @ x.new_tensor(matrices[1])
    if not clip:
        return out
    # Rows sum to 1, so values are convex combinations of [0, 1]; clip only removes
    # float32 rounding (1.0000001) that would put the frame outside [0, 1].
    return np.clip(out, 0.0, 1.0, out=out) if isinstance(out, np.ndarray) else out.clamp_(0.0, 1.0)


class PixelObservation(gymnasium.ObservationWrapper, RecordConstructorArgs):
    """uint8 ``(H, W, 3)`` frames -> float32 ``(3, size, size)`` in [0, 1], area-resized (:func:`area_resize`) when ``size < H``."""

    def __init__(self, env: gymnasium.Env, size: int = 84):
        RecordConstructorArgs.__init__(self, size=size)
        gymnasium.ObservationWrapper.__init__(self, env)
        height, width, channels = env.observation_space.shape
        if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= min(height, width):
            raise ValueError(f"frame_size must be an int from 16 to {min(height, width)} (84 = the paper, 96 = full frame), got {size!r}")
        self.size = size
        self.observation_space = gymnasium.spaces.Box(0.0, 1.0, (channels, size, size), np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        # (C, H, W): the layout the matmuls and the policy read (made contiguous float32 there).
        return area_resize(np.asarray(observation).transpose(2, 0, 1), self.size)


def make_car_racing(env_id: str = "CarRacing-v3", **options: Any) -> gymnasium.Env:
    """CarRacing for Hebbian agents; options and defaults in :data:`DEFAULTS` (see the module docstring).

    Returns an env whose observations are float32 ``(3, frame_size, frame_size)`` in [0, 1]
    and whose actions are (steer, gas, brake) in Box([-1, 0, 0], [1, 1, 1]); reward is the
    env's own (+1000/N per tile, -0.1 per frame).
    """
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for {env_id}; CarRacing accepts {', '.join(DEFAULTS)}")
    opts = {**DEFAULTS, **options}
    if opts["neg_reward_limit"] is not None and (isinstance(opts["neg_reward_limit"], bool) or not isinstance(opts["neg_reward_limit"], int) or opts["neg_reward_limit"] < 0):
        raise ValueError(f"neg_reward_limit must be a non-negative int or None (off, for evaluation), got {opts['neg_reward_limit']!r}")
    if isinstance(opts["max_episode_steps"], bool) or not isinstance(opts["max_episode_steps"], int) or opts["max_episode_steps"] < 1:
        raise ValueError(f"max_episode_steps must be a positive int, got {opts['max_episode_steps']!r}")

    env = _base_car_racing(
        env_id,
        continuous=opts["continuous"],
        render_mode=opts["render_mode"],
        max_episode_steps=opts["max_episode_steps"],
        lap_complete_percent=opts["lap_complete_percent"],
        domain_randomize=opts["domain_randomize"],
        exact_env=opts["exact_env"],
    )
    env = PixelObservation(env, size=opts["frame_size"])
    if opts["neg_reward_limit"] is not None:
        env = StopAfterNegativeRun(env, limit=opts["neg_reward_limit"], start_after=-1)
    return env
