"""``pygame.transform.smoothscale``'s SSE2 shrink, computed from rows of runs.

14-bit fixed-point weights and ``mulhi`` truncation as in ``filter_shrink_X_SSE2`` and
``filter_shrink_Y_SSE2`` (the GENERIC C backend rounds differently). A run of one colour
that covers whole X windows is shrunk by copying that colour's precomputed outputs
(:func:`_colour_tables`); a row recomputes only the windows whose pixels changed since the
row before, and the Y filter adds a value times the rows it lasted when it changes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from envs.car_racing_raster.runs import _inline, _row


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
    value = ((whole >> shift) & 0xFFFF) + ((edge * counter[k]) >> 16) + ((before * share[k]) >> 16)
    return min((value * recip) >> 16, 255)


@njit(cache=True)
def _colour_tables(colors, plan):
    """X-shrink outputs (P, 3 * w) uint8, RGB interleaved, of windows lying
    inside one run of each packed colour in ``colors`` (P,): copied instead
    of computed, a stretch of windows as one contiguous copy."""
    boundary, counter, share, recip = plan
    tables = np.empty((colors.shape[0], 3 * boundary.shape[0]), np.uint8)
    for p in range(colors.shape[0]):
        c = colors[p]
        for k in range(boundary.shape[0]):
            whole = (boundary[k] - (boundary[k - 1] + 1 if k > 0 else 0)) * c
            for channel in range(3):
                tables[p, 3 * k + channel] = _shrunk_value(whole, c, c, k, counter, share, recip, channel)
    return tables


@_inline
def _shrink_row_x(runs, meta, plan, tables, out):
    """``filter_shrink_X_SSE2`` of one painted row -> ``out`` (3 * w,) uint8,
    RGB interleaved (output ``k``'s channel ``c`` at ``3 * k + c``), the
    layout of the frame, so the Y shrink writes the frame itself.

    Output ``k`` depends on pixels ``boundary[k - 1]..boundary[k]`` (from 0
    for the first). Where one run of a palette colour holds all of them, a
    stretch of outputs is copied from that colour's table; otherwise the
    whole pixels are summed run by run (packed: three channels per add).
    """
    boundary, counter, share, recip = plan
    width, count, w = meta[1], meta[0], boundary.shape[0]
    r = 0  # the run holding the window's first pixel
    k = 0
    while k < w:
        lo = boundary[k - 1] if k > 0 else 0
        while r + 1 < count and runs[0, r + 1] <= lo:
            r += 1
        end = runs[0, r + 1] if r + 1 < count else width
        p = runs[2, r]
        if p >= 0 and boundary[k] < end:
            stop = k + 1
            while stop < w and boundary[stop] < end:
                stop += 1
            for i in range(3 * k, 3 * stop):
                out[i] = tables[p, i]
            k = stop
            continue
        whole, last, previous, _ = _window_inputs(runs, count, width, boundary, k, r)
        for channel in range(3):
            out[3 * k + channel] = _shrunk_value(
                whole, last, previous, k, counter, share, recip, channel)
        k += 1


@_inline
def _window_inputs(runs, count, width, boundary, k, r):
    """The X shrink's inputs for output ``k``: the packed sum of its whole
    pixels, its boundary pixel and the previous output's boundary pixel (0
    for the first), and the run holding its first pixel. ``r``: a run at or
    before that pixel, where the search starts."""
    lo = boundary[k - 1] if k > 0 else 0
    while r + 1 < count and runs[0, r + 1] <= lo:
        r += 1
    whole = 0
    q = r
    x = lo + 1 if k > 0 else 0
    while x < boundary[k]:
        while q + 1 < count and runs[0, q + 1] <= x:
            q += 1
        stop = min(runs[0, q + 1] if q + 1 < count else width, boundary[k])
        whole += (stop - x) * runs[1, q]
        x = stop
    while q + 1 < count and runs[0, q + 1] <= boundary[k]:
        q += 1
    return whole, runs[1, q], runs[1, r] if k > 0 else 0, r


# Consecutive canvas rows differ only where an edge moved (by about a pixel
# per row): a row's X shrink starts from the previous row's and recomputes
# just the outputs whose pixels changed, and the Y filter adds a lane's value
# times the number of rows it held, when it changes, instead of every row.
# ``line`` (3 * w,) uint8 is the current X-shrunk row, ``acc`` (3 * w,) int32
# the Y filter's sums up to row ``since`` (3 * w,) int32 of each lane.


@_inline
def _remember_runs(runs, meta, seen, seen_count):
    """Copy the row's runs to ``seen``, the previous row for the next one."""
    count = meta[0]
    for i in range(count):
        seen[0, i], seen[1, i] = runs[0, i], runs[1, i]
    seen_count[0] = count


@_inline
def _set_lane(line, acc, since, lane, value, y):
    """Lane ``lane`` of the X-shrunk row becomes ``value`` from row ``y`` on."""
    if line[lane] != value:
        acc[lane] += (y - since[lane]) * line[lane]
        line[lane] = value
        since[lane] = y


@_inline
def _shrink_row_changes(runs, meta, seen, seen_count, y, plan, window_at, line, acc, since):
    """Update the X-shrunk row for row ``y``: recompute the outputs whose
    pixels differ between ``seen`` (the previous row's runs) and ``runs``.

    Pixel ``x`` feeds output ``window_at[x]`` (the first whose boundary is at
    or after it; ``w`` past the last), and a boundary pixel the next output too.
    """
    boundary, counter, share, recip = plan
    width, count, old, w = meta[1], meta[0], seen_count[0], boundary.shape[0]
    i = j = 0
    x = 0
    done = -1  # outputs up to here are recomputed
    hint = 0  # a run at or before the next recomputed window's first pixel
    while x < width:
        next_old = seen[0, i + 1] if i + 1 < old else width
        next_new = runs[0, j + 1] if j + 1 < count else width
        end = min(next_old, next_new)
        if seen[1, i] != runs[1, j]:  # pixels x..end - 1 changed
            first, last = max(window_at[x], done + 1), window_at[end - 1]
            if last < w and boundary[last] == end - 1:
                last += 1
            for k in range(first, min(last, w - 1) + 1):
                whole, edge, previous, hint = _window_inputs(runs, count, width, boundary, k, hint)
                for channel in range(3):
                    value = _shrunk_value(whole, edge, previous, k, counter, share, recip, channel)
                    _set_lane(line, acc, since, 3 * k + channel, value, y)
            done = max(done, last)
        x = end
        if next_old == end:
            i += 1
        if next_new == end:
            j += 1


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


@_row
def _shrink_row(runs, meta, seen, seen_count, y, xplan, tables, window_at, line, acc, since,
                yplan, output_of, out):
    """Shrink painted row ``y`` into the frame ``out`` (h, 3 * w): in X, from
    scratch for the first row and by changes after; then in Y."""
    if seen_count[0] < 0:
        _shrink_row_x(runs, meta, xplan, tables, line)
        for i in range(since.shape[0]):
            since[i] = y
    else:
        _shrink_row_changes(runs, meta, seen, seen_count, y, xplan, window_at, line, acc, since)
    _remember_runs(runs, meta, seen, seen_count)
    _shrink_y_row(line, y, yplan, output_of, acc, since, out)


@njit(cache=True)
def _shrink_state(width, out_w, height, out_h):
    """Plans and buffers of the X and Y shrink (see _shrink_row), colour tables apart."""
    xplan = _shrink_x_plan(width, out_w)
    window_at = np.full(width, out_w, np.int64)
    x = 0
    for k in range(out_w):
        window_at[x : xplan[0][k] + 1] = k
        x = xplan[0][k] + 1
    yplan, output_of = _shrink_y_plan(height, out_h)
    lanes = 3 * out_w
    buffers = (np.zeros(lanes, np.uint8), np.zeros(lanes, np.int32), np.zeros(lanes, np.int32),
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
