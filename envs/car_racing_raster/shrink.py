"""``pygame.transform.smoothscale``'s SSE2 shrink, computed row by row from pixel rows.

14-bit fixed-point weights and ``mulhi`` truncation as in ``filter_shrink_X_SSE2`` and
``filter_shrink_Y_SSE2`` (the GENERIC C backend rounds differently). Consecutive canvas
rows differ only where an edge moved, so each row is compared with the one before, 64
pixels per vector compare, and only the X windows holding a changed pixel are recomputed;
the Y filter adds a value times the rows it lasted when it changes.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from envs.car_racing_raster.rows import _inline, _pack, _row, _u


# smoothscale's SSE2 filters work in 14-bit fixed point.
_ONE = 0x4000


@njit(cache=True)
def _shrink_plan(src, dst):
    """Where smoothscale's SSE2 shrink of ``src`` pixels to ``dst`` writes.

    Returns ``(boundary, counter, recip)``: output ``k`` is written at source
    pixel ``boundary[k]``, which contributes ``counter[k]`` (14-bit) of itself
    to output ``k`` and the rest to output ``k + 1``; the pixels strictly
    between two boundaries count whole. ``recip`` is the 16-bit reciprocal.
    """
    space = _ONE * src // dst
    boundary = np.empty(dst, np.int64)
    counter = np.empty(dst, np.int64)
    left = space
    k = 0
    for x in range(src):
        if left > _ONE:
            left -= _ONE
        else:
            boundary[k] = x
            counter[k] = left
            k += 1
            left = space - (_ONE - left)
    recip = (0x40000000 // space) & 0xFFFF
    return boundary, counter, recip


@njit(cache=True)
def _shrink_x_plan(width, out_w):
    """``filter_shrink_X_SSE2`` of rows of ``width`` to ``out_w`` as per-output
    terms: ``(boundary, counter, share, recip)`` where output ``k`` sums the
    pixels strictly between ``boundary[k - 1]`` and ``boundary[k]``, plus
    ``counter[k]`` of pixel ``boundary[k]`` and ``share[k]`` (the rest left
    by the previous output; 0 for the first) of pixel ``boundary[k - 1]``."""
    boundary, counter, recip = _shrink_plan(width, out_w)
    share = np.zeros(out_w, np.int64)
    share[1:] = _ONE - counter[:-1]
    return boundary, counter, share, recip


@_inline
def _shrunk_value(whole, last, previous, k, counter, share, recip, channel):
    """One output channel of the X shrink: ``whole`` the packed sum of the
    whole pixels, ``last``/``previous`` the packed boundary pixels; the SSE2
    filter's ``mulhi`` truncations (`>> 16`) and saturation."""
    shift = 32 - 16 * channel
    edge = ((last >> shift) & 255) << 2
    before = ((previous >> shift) & 255) << 2
    value = ((whole >> shift) & 0xFFFF) + ((edge * counter[_u(k)]) >> 16) + ((before * share[_u(k)]) >> 16)
    return min((value * recip) >> 16, 255)


# Consecutive canvas rows differ only where an edge moved (about ten pixels
# a row while driving): a row's X shrink starts from the previous row's. A
# changed pixel adds its difference to its window's packed sum of whole
# pixels (``wholes`` (w + 1,) int64; the last entry takes pixels past the
# last window) and marks the windows it feeds in a bit set (``dirty``, int64
# words); the marked windows are then recomputed from their sums and boundary
# pixels. The Y filter adds a lane's value times the number of rows it held.
# ``line`` (3 * w,) uint8 is the current X-shrunk row, ``acc`` (3 * w,) int32
# the Y filter's sums up to row ``since`` (3 * w,) int32 of each lane.


@_inline
def _set_lane(line, acc, since, lane, value, y):
    """Lane ``lane`` of the X-shrunk row becomes ``value`` from row ``y`` on.

    Without a test for an unchanged value: closing the lane's interval at ``y``
    and opening another with the same value leaves the Y sum as it was (the
    branch-free form was not timed apart from the rest of the change).
    """
    at = _u(lane)
    acc[at] += (y - since[at]) * line[at]
    line[at] = value
    since[at] = y


def _diff_mask_of(lanes):
    """An intrinsic ``(px, prev, base) -> int64``: bit ``i`` set where ``px[base + i]
    != prev[base + i]``, i < ``lanes`` (int32 rows): ``lanes`` compares as vector code,
    the result a bit mask (LLVM's vectorisers made gathers of such a loop)."""

    @intrinsic
    def diff_mask(typingctx, px, prev, base):
        row = types.Array(types.int32, 1, "C")
        if not (px == prev == row and base == types.int64):
            return None
        sig = types.int64(px, prev, base)

        def codegen(context, builder, signature, args):
            px_v, prev_v, base_v = args
            vec = ir.VectorType(ir.IntType(32), lanes)

            def load(index, value):
                data = context.make_array(signature.args[index])(context, builder, value).data
                return builder.load(builder.bitcast(builder.gep(data, [base_v]), ir.PointerType(vec)), align=4)

            ne = builder.icmp_unsigned("!=", load(0, px_v), load(1, prev_v))
            return builder.zext(builder.bitcast(ne, ir.IntType(lanes)), ir.IntType(64))

        return sig, codegen

    return diff_mask


_diff_mask_64 = _diff_mask_of(64)
_diff_mask_8 = _diff_mask_of(8)


@_inline
def _changed_pixel(px, prev, x, window_at, wholes, dirty):
    """Pixel ``x`` differs from the previous row: its window's sum of whole
    pixels takes the difference, and the outputs it feeds (output ``k``, and the
    next one too if ``x`` is output ``k``'s boundary pixel: ``window_at[x]`` is
    ``2 * k + 1`` then, else ``2 * k``) are marked in the bit set ``dirty`` (int64
    words), without branches: changed pixels come at unpredictable places."""
    at = window_at[_u(x)]
    k, edge = at >> 1, at & 1  # k = w for pixels past the last boundary: a spare word bit and sum
    wholes[_u(k)] += (_pack(np.int64(px[_u(x)])) - _pack(np.int64(prev[_u(x)]))) * (1 - edge)
    dirty[_u(k >> 6)] |= np.int64(1) << (k & 63)
    k1 = k + edge
    dirty[_u(k1 >> 6)] |= np.int64(1) << (k1 & 63)


@_inline
def _changed_pixels(px, prev, x, mask, window_at, wholes, dirty):
    """_changed_pixel for the pixels ``x + i`` of the set bits ``i`` of ``mask``, in order."""
    while mask != 0:
        _changed_pixel(px, prev, x + trailing_zeros(mask), window_at, wholes, dirty)
        mask &= mask - 1


@_inline
def _window_sum(px, plan, k):
    """Packed sum of the whole pixels of output ``k`` of pixel row ``px``."""
    boundary = plan[0]
    lo = boundary[k - 1] + 1 if k > 0 else 0
    whole = 0
    for x in range(lo, boundary[k]):
        whole += _pack(np.int64(px[x]))
    return whole


@_inline
def _update_window(px, k, y, plan, wholes, line, acc, since):
    """Output ``k``'s lanes from row ``y`` on, from its sum of whole pixels
    ``wholes[k]`` and its boundary pixels in ``px``."""
    boundary, counter, share, recip = plan
    last = _pack(np.int64(px[_u(boundary[_u(k)])]))
    previous = _pack(np.int64(px[_u(boundary[_u(k - 1)])])) if k > 0 else 0
    for channel in range(3):
        value = _shrunk_value(wholes[_u(k)], last, previous, k, counter, share, recip, channel)
        _set_lane(line, acc, since, 3 * k + channel, value, y)


@_row
def _shrink_row(px, prev, first, y, xplan, window_at, wholes, dirty, line, acc, since, yplan, output_of, out):
    """Shrink painted row ``y`` (``px``, int32 0xRRGGBB) into the frame ``out``
    (h, 3 * w): in X, every output for the ``first`` row, then only the outputs
    whose pixels differ from ``prev`` (the previous row); then in Y."""
    width, w = px.shape[0], xplan[0].shape[0]
    if first:
        for k in range(w):
            wholes[k] = _window_sum(px, xplan, k)
            _update_window(px, k, y, xplan, wholes, line, acc, since)
        for i in range(since.shape[0]):
            since[i] = y
    else:
        x = 0
        while x + 64 <= width:
            _changed_pixels(px, prev, x, _diff_mask_64(px, prev, x), window_at, wholes, dirty)
            x += 64
        while x + 8 <= width:
            _changed_pixels(px, prev, x, _diff_mask_8(px, prev, x), window_at, wholes, dirty)
            x += 8
        for x in range(x, width):
            _changed_pixels(px, prev, x, np.int64(px[x] != prev[x]), window_at, wholes, dirty)
        for word in range(dirty.shape[0]):
            bits = dirty[word]
            dirty[word] = 0
            while bits != 0:
                k = 64 * word + trailing_zeros(bits)
                if k < w:
                    _update_window(px, k, y, xplan, wholes, line, acc, since)
                bits &= bits - 1
    _shrink_y_row(line, y, yplan, output_of, acc, since, out)


@_inline
def _shrink_y_row(line, y, plan, output_of, acc, since, out):
    """``filter_shrink_Y_SSE2`` at row ``y``: a boundary row ``k = output_of[y]``
    completes output row ``out[k]`` (h, L) from the rows summed since the last
    one and its own share, and starts the next with the rest of its share.

    int32 lanes (every value stays below 2**25): the loop then runs 8 lanes
    per instruction; with int64 it stayed scalar, 68 against 13 us a frame.
    """
    k = output_of[y]
    if k < 0:
        return
    boundary, counter, recip = plan
    yc = np.int32(counter[k])
    yf = np.int32(_ONE - counter[k])
    scale = np.int32(recip)
    row = np.int32(y)
    done = out[k]
    for i in range(line.shape[0]):
        value = np.int32(line[i])
        edge = value << 2
        whole = acc[i] + (row - since[i]) * value
        done[i] = min(((((edge * yc) >> 16) + whole) * scale) >> 16, 255)
        acc[i] = (edge * yf) >> 16
        since[i] = row + 1


@njit(cache=True)
def _shrink_state(width, out_w, height, out_h):
    """Plans and buffers of the X and Y shrink (see _shrink_row): ``(xplan, window_at,
    yplan, output_of, (wholes, dirty, line, acc, since, frame))``, ``frame`` (out_h,
    3 * out_w) uint8 the result."""
    xplan = _shrink_x_plan(width, out_w)
    # Per pixel 2 * its output (out_w past the last boundary), + 1 at an output's boundary
    # pixel: one load gives both (the boundary was a second load, waiting for the first).
    window_at = np.full(width, 2 * out_w, np.int64)
    x = 0
    for k in range(out_w):
        window_at[x : xplan[0][k] + 1] = 2 * k
        window_at[xplan[0][k]] = 2 * k + 1
        x = xplan[0][k] + 1
    yplan, output_of = _shrink_y_plan(height, out_h)
    lanes = 3 * out_w
    buffers = (np.zeros(out_w + 1, np.int64), np.zeros(out_w // 64 + 1, np.int64),
               np.zeros(lanes, np.uint8), np.zeros(lanes, np.int32), np.zeros(lanes, np.int32),
               np.empty((out_h, lanes), np.uint8))
    return xplan, window_at, yplan, output_of, buffers


@njit(cache=True)
def _shrink_y_plan(height, out_h):
    """The Y filter's plan and, per source row, the output it completes (or -1)."""
    plan = _shrink_plan(height, out_h)
    output_of = np.full(height, -1, np.int64)
    for k in range(out_h):
        output_of[plan[0][k]] = k
    return plan, output_of
