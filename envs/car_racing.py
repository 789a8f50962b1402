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
      pixels per output pixel, so each output pixel reads 2 x 2 input pixels); computed by a
      small compiled kernel in exact integer arithmetic (see :func:`area_resize`), so there is
      no OpenCV dependency. One difference from the reference: it used ``np.swapaxes(obs, 0, 2)``,
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
import threading
from typing import Any

import gymnasium
import numpy as np
from gymnasium.utils import RecordConstructorArgs
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

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
def area_resize_taps(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`area_resize_matrix` as integer taps: ``(first, weights)``, read-only and shared.

    ``first``: int64 ``(target,)``, the first input pixel output pixel ``i`` reads;
    ``weights``: float32 ``(target, K)``, whole numbers, the overlaps of output pixel ``i``
    with input pixels ``first[i] .. first[i] + K - 1`` in units of ``1 / target`` input
    pixel, so ``weights[i] / source`` is the nonzero run of row ``i`` of the matrix and every
    row sums to ``source``. ``K`` is the most input pixels any output pixel touches (2 for
    96 -> 84); rows that touch fewer carry zeros, and ``first`` is clamped so that every tap
    lies inside the signal.
    """
    if not 1 <= target <= source:
        raise ValueError(f"area resize only shrinks: target {target} must be in [1, {source}]")
    out = np.arange(target)[:, None]
    pixels = np.arange(source)[None, :]
    # Output pixel i covers [i * source, (i + 1) * source) and input pixel p covers
    # [p * target, (p + 1) * target), both in units of 1 / target input pixel.
    overlap = np.clip(np.minimum((out + 1) * source, (pixels + 1) * target) - np.maximum(out * source, pixels * target), 0, None)
    taps = int((overlap > 0).sum(axis=1).max())
    first = np.minimum(np.argmax(overlap > 0, axis=1), source - taps).astype(np.int64)
    weights = np.take_along_axis(overlap, first[:, None] + np.arange(taps), axis=1).astype(np.float32)
    first.flags.writeable = weights.flags.writeable = False
    return first, weights


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
    kind, a new array (a tensor on the input's device). ``envs`` never imports torch: a tensor
    brings its own operations (``float``, ``new_tensor``, ``clamp_``).

    Two implementations of the one definition (:func:`area_resize_matrix`, the overlap-weighted
    mean), which agree up to float32 rounding (~1e-7):

    * uint8 NumPy frames (every frame an env renders): :func:`_area_resize_uint8`, a compiled
      kernel in exact arithmetic. With the integer taps of :func:`area_resize_taps`, every
      partial sum is a whole number of at most 255 * H * W < 2**24, so float32 adds them up
      exactly, in any order. The only roundings are those of the final scaling by
      r = float32(1 / (255 * H * W)): each output is within one float32 ulp of the exact
      mean for the env's 96x96 frames (up to 1.5 for some other sizes, e.g. 64x64: r's own
      error of up to half an ulp of r comes on top of the product's rounding), and never
      above 1 (r errs by too little to lift 255 * H * W * r past 1). A channels-first view
      of a channels-last frame (``frame.transpose(2, 0, 1)``, what :class:`PixelObservation`
      passes) is read in its own memory order, with no copy. 96 -> 84: ~9 us with the column
      blocks (~15 us without, against ~80 us for the matrix products below on the same frame;
      one thread, timed in turn).
    * float frames, other integer types, frames too large for exact float32 sums, and torch
      tensors: ``rows @ frames @ cols`` with the matrices of :func:`area_resize_matrices`
      (integer frames scaled by 1/255 in the row matrix). ``clip`` removes float32 rounding
      (1.0000001) above 1; radioactive marking, whose inputs are clamped already, passes
      ``clip=False``. The kernel's results need no clipping.
    """
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim >= 2 \
            and _exact_in_float32(*frames.shape[-2:]):
        return _resize_uint8_frames(frames, size)
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


def _exact_in_float32(height: int, width: int) -> bool:
    """Whether the kernel's whole-number sums of a uint8 ``height x width`` plane stay below
    2**24, where float32 adds them exactly (see :func:`area_resize`)."""
    return 255 * height * width < 2**24


def _resize_uint8_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(..., H, W)`` -> float32 ``(..., size, size)``: :func:`area_resize`'s exact path.

    The kernel reads channels-last frames ``(N, H, W, C)``. When ``frames`` is a channels-first
    view of such memory (its last three axes moved back are C-contiguous, as for
    ``frame.transpose(2, 0, 1)``), that memory is read as it is; any other layout is made
    contiguous and each ``(H, W)`` plane read as a frame with C = 1.
    """
    height, width = frames.shape[-2:]
    if frames.ndim == 3:
        channels_last = frames.transpose(1, 2, 0)
        if channels_last.flags.c_contiguous:
            return _resize_uint8_frame(channels_last, size)
    taps = _uint8_taps(height, width, size)
    channels_last = np.moveaxis(frames, -3, -1) if frames.ndim >= 3 else None
    if channels_last is not None and channels_last.flags.c_contiguous:
        src = channels_last.reshape(-1, height, width, frames.shape[-3])
    else:
        src = np.ascontiguousarray(frames).reshape(-1, height, width, 1)
    out = np.empty((src.shape[0], src.shape[3], size, size), dtype=np.float32)
    _area_resize_uint8(src, *taps, out, _scratch(width, src.shape[3], size))
    return out.reshape(frames.shape[:-2] + (size, size))


def _resize_uint8_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """One env frame, uint8 ``(H, W, C)`` C-contiguous -> float32 ``(C, size, size)``: the
    lean path (each NumPy call around the kernel costs ~0.2-0.5 us, the kernel ~7 us)."""
    height, width, channels = frame.shape
    out = np.empty((1, channels, size, size), dtype=np.float32)
    _area_resize_uint8(frame[None], *_uint8_taps(height, width, size), out, _scratch(width, channels, size))
    return out[0]


_SCRATCH = threading.local()


def _scratch(width: int, channels: int, size: int) -> np.ndarray:
    """The kernel's float32 scratch: one weighted input row (``width * channels``), 8 more
    that the column blocks' last vector loads read, and their three output planes of
    ``size + 8``. Zeros at first; the kernel writes every value it keeps before reading it,
    and the padding, never written, feeds only lanes that are never kept, so one buffer per
    thread and shape serves every call (allocating it took ~0.4 us a frame)."""
    buffers = _SCRATCH.__dict__.setdefault("buffers", {})
    key = (width, channels, size)
    if key not in buffers:
        buffers[key] = np.zeros(width * channels + 8 + 3 * (size + 8), dtype=np.float32)
    return buffers[key]


@functools.lru_cache(maxsize=64)
def _uint8_taps(height: int, width: int, size: int) -> tuple:
    """The kernel's taps and scale for ``(height, width)`` uint8 frames resized to ``(size, size)``,
    and the column blocks' weights (:func:`_column_block_weights`)."""
    first_c, weights_c = area_resize_taps(width, size)
    return (*area_resize_taps(height, size), first_c, weights_c, np.float32(1.0 / (255.0 * height * width)),
            *_column_block_weights(width, size, first_c, weights_c))


def _column_block_weights(width: int, size: int, first: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(w0, w1)``, float32 ``(8,)`` each, when the column taps of ``width -> size`` come
    in blocks of 7 output pixels from 8 input pixels (``size * 8 == width * 7``, 96 -> 84 among
    them): output ``7 b + m`` reads inputs ``8 b + m`` and ``8 b + m + 1`` with the same weights
    in every block (lane 7 weighs 0). Empty arrays otherwise."""
    none = np.zeros(0, np.float32), np.zeros(0, np.float32)
    if size * 8 != width * 7 or weights.shape[1] != 2:
        return none
    j = np.arange(size)
    if not (np.array_equal(first, j + j // 7) and np.array_equal(weights, np.tile(weights[:7], (size // 7, 1)))):
        return none
    w0, w1 = np.zeros(8, np.float32), np.zeros(8, np.float32)
    w0[:7], w1[:7] = weights[:7, 0], weights[:7, 1]
    return w0, w1


_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


@intrinsic
def _column_block(typingctx, row, line, block, offset, plane, w0, w1, scale):
    """One column block of the 3-channel area resize (see _column_block_weights) as vector code:
    ``line[offset + c * plane + 7 * block + m] = (w0[m] * row[3 (8 block + m) + c]
    + w1[m] * row[3 (8 block + m + 1) + c]) * scale`` for the channels c and m = 0..7 (lane 7
    is a throwaway the next block overwrites).

    ``row`` holds the interleaved RGB of a weighted input row; the block's 8 pixels and the
    next one are 27 floats, read as two 16-float vectors (so ``row`` needs 8 floats after the
    last block's) and regrouped per channel by two shuffles. LLVM's vectorisers left this
    gather scalar; shuffles are plain LLVM IR, lowered for any CPU. The arithmetic is the
    scalar loop's: products and sums of whole numbers below 2**24, exact, then one rounding.
    """
    vector = types.Array(types.float32, 1, "C")
    if not (row == line == w0 == w1 == vector and block == offset == plane == types.int64 and scale == types.float32):
        return None  # the IR below reads and writes float32 memory with int64 offsets, nothing else
    sig = types.void(row, line, block, offset, plane, w0, w1, scale)

    def codegen(context, builder, signature, args):
        row_v, line_v, block_v, offset_v, plane_v, w0_v, w1_v, scale_v = args

        def data(index, value):
            return context.make_array(signature.args[index])(context, builder, value).data

        def vector_at(pointer, offset, lanes):
            return builder.bitcast(builder.gep(pointer, [offset]), ir.PointerType(ir.VectorType(_F32, lanes)))

        row_p, line_p = data(0, row_v), data(1, line_v)
        base = builder.mul(block_v, ir.Constant(_I64, 24))
        low = builder.load(vector_at(row_p, base, 16), align=4)
        high = builder.load(vector_at(row_p, builder.add(base, ir.Constant(_I64, 16)), 16), align=4)
        left_w = builder.load(vector_at(data(5, w0_v), ir.Constant(_I64, 0), 8), align=4)
        right_w = builder.load(vector_at(data(6, w1_v), ir.Constant(_I64, 0), 8), align=4)
        v8 = ir.VectorType(_F32, 8)
        one = builder.insert_element(ir.Constant(v8, None), scale_v, ir.Constant(_I32, 0))
        scales = builder.shuffle_vector(one, ir.Constant(v8, None), ir.Constant(ir.VectorType(_I32, 8), [0] * 8))
        first_out = builder.add(offset_v, builder.mul(block_v, ir.Constant(_I64, 7)))
        for c in range(3):
            lanes = ir.VectorType(_I32, 8)
            left = builder.shuffle_vector(low, high, ir.Constant(lanes, [3 * m + c for m in range(8)]))
            right = builder.shuffle_vector(low, high, ir.Constant(lanes, [3 * (m + 1) + c for m in range(8)]))
            value = builder.fmul(builder.fadd(builder.fmul(left_w, left), builder.fmul(right_w, right)), scales)
            at = builder.add(first_out, builder.mul(plane_v, ir.Constant(_I64, c)))
            builder.store(value, vector_at(line_p, at, 8), align=4)
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, cache=True)
def _area_resize_uint8(src, first_r, weights_r, first_c, weights_c, scale, block_w0, block_w1, out, scratch):
    """Area resize, exact: uint8 frames ``(N, H, W, C)`` C-contiguous -> float32 ``(N, C, T, U)``.

    first_r, weights_r: :func:`area_resize_taps` ``(H, T)``; first_c, weights_c: ``(W, U)``.
    scale: float32 1 / (255 * H * W) (see :func:`area_resize` for why the results are exact
    to one ulp for 96x96 frames). block_w0, block_w1: :func:`_column_block_weights`.
    scratch: float32, as :func:`_scratch` sizes it.

    Two passes per output row. Rows: the row's taps, whole input rows of W * C values
    weighted and summed in the frame's own interleaved order, one contiguous vector loop per
    tap (~3 us of the ~13 us for 96 -> 84). Columns: each output pixel sums its K column taps
    of one channel from that row and is scaled: a gather (which input column depends on the
    output column through the taps), which LLVM does not vectorise here as it cannot prove
    that the gathered row and the output do not overlap, so it runs one pixel at a time,
    ~7 instructions each. For the env's frames (3 channels, 2 taps) that loop is written
    out, a column's taps loaded once for its three pixels (~10 us); the general loop over
    run-time channel and tap counts takes ~1.7x as long. Tried and slower: two output rows
    per pass (14.6 against 13.2 us), and vectorised variants (runs of columns that share a
    tap offset, written 8 at a time; planar rows with a block shuffle), 15-17 us. Where the
    column taps come in blocks of 7 outputs from 8 inputs (96 -> 84, the paper's), each block
    is vector code with two shuffles per channel (:func:`_column_block`), written straight
    into the output planes (a row's last block into the scratch line, then its 7 pixels):
    the resize ~16-17 -> ~9 us on an AVX-512 core, then ~7 us with two row taps summed in
    one pass and no copy of the other blocks, the same numbers.
    """
    n_frames, height, width, channels = src.shape
    t_rows, k_rows = weights_r.shape
    t_cols, k_cols = weights_c.shape
    n = width * channels
    flat = src.reshape(-1)
    planes = out.reshape(-1)
    plane = np.uint64(t_rows * t_cols)
    row = scratch[: n + 8]
    line = scratch[n + 8 :]
    line_plane = t_cols + 8
    blocks = channels == 3 and block_w0.shape[0] == 8
    for b in range(n_frames):
        for i in range(t_rows):
            start = np.uint64((b * height + first_r[i]) * n)
            if k_rows == 2:  # one pass for both taps (whole numbers: the same sums as two)
                w0 = weights_r[i, 0]
                w1 = weights_r[i, 1]
                tap = start + np.uint64(n)
                for x in range(np.uint64(n)):
                    row[x] = w0 * np.float32(flat[start + x]) + w1 * np.float32(flat[tap + x])
            else:
                w = weights_r[i, 0]
                for x in range(np.uint64(n)):
                    row[x] = w * np.float32(flat[start + x])
                for k in range(1, k_rows):
                    tap = start + np.uint64(k * n)
                    w = weights_r[i, k]
                    for x in range(np.uint64(n)):
                        row[x] += w * np.float32(flat[tap + x])
            o = np.uint64((b * channels * t_rows + i) * t_cols)
            if blocks:
                # Straight into the output: a block's 8th lane lands on the next block's first
                # pixel, written next. The row's last block would spill into the next row
                # (already written at a plane's last row), so it goes through `line`.
                last = t_cols // 7 - 1
                for block in range(last):
                    _column_block(row, planes, block, np.int64(o), np.int64(plane), block_w0, block_w1, scale)
                _column_block(row, line, last, 0, line_plane, block_w0, block_w1, scale)
                for c in range(3):
                    oc = o + np.uint64(c) * plane + np.uint64(7 * last)
                    lc = np.uint64(c * line_plane + 7 * last)
                    for j in range(np.uint64(7)):
                        planes[oc + j] = line[lc + j]
            elif channels == 3 and k_cols == 2:
                for j in range(np.uint64(t_cols)):
                    q = np.uint64(first_c[j]) * np.uint64(3)
                    w0 = weights_c[j, 0]
                    w1 = weights_c[j, 1]
                    planes[o + j] = (w0 * row[q] + w1 * row[q + np.uint64(3)]) * scale
                    planes[o + plane + j] = (w0 * row[q + np.uint64(1)] + w1 * row[q + np.uint64(4)]) * scale
                    planes[o + np.uint64(2) * plane + j] = (w0 * row[q + np.uint64(2)]
                                                            + w1 * row[q + np.uint64(5)]) * scale
            else:
                for c in range(channels):
                    oc = o + np.uint64(c) * plane
                    for j in range(np.uint64(t_cols)):
                        q = np.uint64(first_c[j] * channels + c)
                        s = weights_c[j, 0] * row[q]
                        for k in range(1, k_cols):
                            s += weights_c[j, k] * row[q + np.uint64(k * channels)]
                        planes[oc + j] = s * scale


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
        # The kernel reads the env's channels-last frame in its own memory order and writes
        # contiguous (C, size, size) float32; any other frame goes through area_resize.
        frame = np.asarray(observation)
        if frame.dtype == np.uint8 and frame.ndim == 3 and frame.flags.c_contiguous \
                and _exact_in_float32(*frame.shape[:2]):
            return _resize_uint8_frame(frame, self.size)
        return area_resize(frame.transpose(2, 0, 1), self.size)


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
