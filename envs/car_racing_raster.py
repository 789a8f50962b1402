"""CarRacing's 96x96 state frame, rasterised row by row without a 1000x800 canvas.

Gymnasium's ``CarRacing`` draws each observation on a 1000x800 pygame Surface
and shrinks it with ``pygame.transform.smoothscale``; moving those ~3 MB of
pixels several times per step is what costs. :func:`render_state_frame`
computes the very same 96x96 result one canvas row at a time, never holding
a row's pixels: a row is a handful of runs of one colour (5-15 while
driving), painted by exact ports of the pygame-ce 2.5.8 C code the
reference calls and shrunk from its runs; only the 96 shrunk values per
channel are kept for the vertical shrink.

Ported C, integer arithmetic and rounding included (pygame-ce 2.5.8 sources):

* ``gfxdraw.aapolygon`` -> SDL_gfx ``aapolygonColor`` -> ``_aalineColor``
  (``_clipLine`` with its float32 slope, Wu lines with a 32-bit error
  accumulator, ``_putPixelAlpha``'s DEFAULT 32-bpp blend). Wu lines are
  sequential in C; here the pixels of one line on one row are computed in
  closed form (after ``n`` steps the accumulator is ``n * erradj`` modulo
  2**32 and the minor coordinate has advanced ``n * erradj >> 32`` times);
* ``gfxdraw.filled_polygon`` -> SDL_gfx ``filledPolygonColorMT`` (16.16
  fixed-point intersections, ``hlineColor`` with Sint16 ends);
* ``pygame.draw.polygon`` -> ``draw_fillpoly`` / ``draw_filltri``
  (float32 intersections, floor/ceil by intersection parity);
* ``pygame.transform.smoothscale`` shrinking, the SSE2 backend
  (``filter_shrink_X_SSE2`` then ``filter_shrink_Y_SSE2``: 14-bit
  fixed-point weights, ``mulhi`` truncation); its results differ from the
  GENERIC C backend, so the SSE2 arithmetic is what is reproduced.

Why rows: painter's order only matters where two operations touch the same
pixel, and pixels of different rows never interact, so evaluating every
operation on one row before the next gives the reference's pixels. Per row,
only the polygons whose vertex rows include it are visited; painting starts
at the last polygon whose fill covers the whole row (usually the background
square, or the indicator panel; what lies under it is never seen); outline
pixels that a polygon's own fill overwrites next are skipped; polygon spans
are computed edge by edge for all rows at once (:func:`_gfx_span_table`).
The X shrink's ~10-pixel windows inside one run of a polygon's colour are
copied from that colour's precomputed outputs (:func:`_colour_tables`), and
since consecutive rows differ only where an edge moved, a row recomputes
just the windows whose pixels changed from the row before; the Y shrink adds
a value times the rows it lasted when it changes (:func:`_shrink_row`).

Colours inside are ``r << 32 | g << 16 | b`` (int64): the shrink sums three
channels with one add. Colours come in as ``0xRRGGBB`` (a 32-bit XRGB
Surface's pixel, alpha 255). Polygons are flat vertex arrays: polygon ``i``
has the vertices ``vx[start[i]:start[i + 1]]``, ``vy[...]`` (float64: the
Python floats the reference hands to pygame, converted to integers here as
pygame does) and colour ``color[i]``. :func:`paint_canvas` and
:func:`smoothscale_canvas` expose the painting and the shrink separately
for tests against pygame.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "paint_canvas",
    "render_state_frame",
    "smoothscale_canvas",
]

# SDL_gfx _clipEncode bits.
_LEFT, _RIGHT, _BOTTOM, _TOP = 1, 2, 4, 8

# Edge kinds of an SDL_gfx anti-aliased line after clipping (see _aaline_record).
_SKIP, _VLINE, _HLINE, _WU_Y, _WU_X, _WU_DIAG = 0, 1, 2, 3, 4, 5
_RECORD = 10  # int64 fields per edge record

# smoothscale's SSE2 filters work in 14-bit fixed point.
_ONE = 0x4000


def _nrt_option_available() -> bool:
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:
        return False
    return hasattr(CPUTargetOptions, "_nrt")


# Kernels only read and write arrays they are given, so they are compiled
# without Numba's runtime (NRT): with it, every call passing arrays updates
# their reference counts atomically on entry and exit, which at thousands of
# small calls per frame took a third of the time. Allocating functions stay
# plain ``njit(cache=True)`` and call kernels. ``_nrt`` is a private Numba
# option; where it is unknown the kernels compile normally (same results).
_kernel = njit(cache=True, _nrt=False) if _nrt_option_available() else njit(cache=True)
# Everything called per row, per polygon row or per pixel is inlined into
# its caller at Numba's level: left to LLVM, calls passing several arrays
# (each a struct of ~7 words) and tuples of them stayed calls and cost more
# than their bodies (the frame took 544 us with the helpers alone inlined,
# 430-480 us with the row functions too; the first compile takes ~50 s
# instead of ~25 s, once per machine: the result is cached on disk).
_inline = (njit(cache=True, _nrt=False, inline="always") if _nrt_option_available()
           else njit(cache=True, inline="always"))


@njit(cache=True)
def _gfx_ints(coords):
    """Python floats -> the Sint16 gfxdraw stores: ``(Sint16)PyLong(int(x))``."""
    out = np.empty(coords.shape[0], np.int64)
    for i in range(coords.shape[0]):
        out[i] = _i16(int(coords[i]))
    return out


@njit(cache=True)
def _draw_ints(coords):
    """Python floats -> the ints ``pygame.draw.polygon`` uses: ``(int)double``."""
    out = np.empty(coords.shape[0], np.int64)
    for i in range(coords.shape[0]):
        out[i] = int(coords[i])
    return out


@_inline
def _i16(v):
    return ((v + 32768) & 0xFFFF) - 32768


@_inline
def _i32(v):
    return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648


@_inline
def _pack(rgb):
    """0xRRGGBB -> the row buffers' pixel ``r << 32 | g << 16 | b``.

    16-bit lanes let smoothscale's sums of whole pixels (<= 11 * 255) be
    taken for all three channels with one 64-bit add per pixel.
    """
    return ((rgb & 0xFF0000) << 16) | ((rgb & 0xFF00) << 8) | (rgb & 0xFF)


@_inline
def _unpack(pixel):
    """Row-buffer pixel -> 0xRRGGBB."""
    return ((pixel >> 16) & 0xFF0000) | ((pixel >> 8) & 0xFF00) | (pixel & 0xFF)


# A canvas row being painted is a list of runs of one colour each: ``row``
# (3, capacity) int64 holds run starts (ascending, the first at pixel 0),
# packed colours and palette entries (a row of the frame's colour tables, see
# _colour_tables, or -1), and ``meta`` (2,) int64 the run count and the row's
# width. A run of a palette colour that covers whole smoothscale windows is
# shrunk by copying that colour's precomputed outputs; everything else is
# summed from the runs. Canvas rows hold a handful of runs (5-15 in steady
# driving), so painting a polygon's span or an outline pixel moves a few
# dozen integers instead of storing hundreds of pixels.


@_inline
def _run_at(row, count, x):
    """Index of the run holding pixel ``x``: the last run starting at or before it."""
    i = 0
    while i + 1 < count and row[0, i + 1] <= x:
        i += 1
    return i


@_inline
def _clear(row, meta, color, palette):
    """The whole row becomes one run of ``color``."""
    row[0, 0], row[1, 0], row[2, 0] = 0, color, palette
    meta[0] = 1


@_inline
def _move_runs(row, rest, dest, count):
    """Move runs ``rest..count - 1`` to start at ``dest`` (either way; the
    copy runs in the direction that never overwrites a run before it moves)."""
    moved = count - rest
    if dest < rest:
        for i in range(moved):
            row[0, dest + i], row[1, dest + i], row[2, dest + i] = (
                row[0, rest + i], row[1, rest + i], row[2, rest + i])
    elif dest > rest:
        for i in range(moved - 1, -1, -1):
            row[0, dest + i], row[1, dest + i], row[2, dest + i] = (
                row[0, rest + i], row[1, rest + i], row[2, rest + i])


@_inline
def _fill(row, meta, x1, x2, color, palette):
    """Pixels ``x1..x2`` (inclusive, clipped to the row) become ``color``.

    The runs the span covers are replaced by one (merged with a neighbour of
    the same colour); the run holding pixel ``x2 + 1`` restarts there.
    """
    width = meta[1]
    x1, x2 = max(x1, 0), min(x2, width - 1)
    if x1 > x2:
        return
    count = meta[0]
    first = _run_at(row, count, x1)
    at = first if row[0, first] == x1 else first + 1  # where the new run goes
    merge_left = at > 0 and row[1, at - 1] == color
    if merge_left and row[2, at - 1] < 0:
        row[2, at - 1] = palette
    tail = x2 + 1 < width  # pixels after the span keep their colour
    last = first
    if tail:
        while last + 1 < count and row[0, last + 1] <= x2 + 1:
            last += 1
    else:
        last = count - 1
    tail_color, tail_palette = row[1, last], row[2, last]
    tail_run = tail and tail_color != color
    if tail and not tail_run and palette < 0:  # the tail merges into the new run
        palette = tail_palette
    rest = last + 1  # the first untouched run
    dest = at + (0 if merge_left else 1) + (1 if tail_run else 0)
    _move_runs(row, rest, dest, count)
    put = at
    if not merge_left:
        row[0, put], row[1, put], row[2, put] = x1, color, palette
        put += 1
    if tail_run:
        row[0, put], row[1, put], row[2, put] = x2 + 1, tail_color, tail_palette
    meta[0] = dest + count - rest


@_inline
def _set(row, meta, x, color):
    """Set pixel ``x`` (ignored off the row) to ``color``."""
    _fill(row, meta, x, x, color, -1)


@_inline
def _blend(row, meta, x, color, alpha):
    """SDL_gfx ``_putPixelAlpha`` (DEFAULT routine, 32 bpp, no alpha mask).

    Each channel becomes ``d + ((c - d) * alpha >> 8)`` (floor shift; the C
    unsigned wrap-around gives exactly this). Colours are packed (see _pack).
    """
    width = meta[1]
    if x < 0 or x >= width:
        return
    count = meta[0]
    i = _run_at(row, count, x)
    d = row[1, i]
    out = 0
    for shift in (32, 16, 0):
        dc = (d >> shift) & 255
        cc = (color >> shift) & 255
        out |= ((dc + (((cc - dc) * alpha) >> 8)) & 255) << shift
    if out == d:
        return
    # Pixel x of run i becomes its own run: the run splits into up to three.
    first = row[0, i] == x
    last = (row[0, i + 1] if i + 1 < count else width) == x + 1
    if first and last:
        row[1, i], row[2, i] = out, -1
        return
    opened = 1 if first or last else 2
    _move_runs(row, i + 1, i + 1 + opened, count)
    at = i if first else i + 1
    if not last:  # the rest of the run restarts after x
        row[0, at + 1], row[1, at + 1], row[2, at + 1] = x + 1, d, row[2, i]
    row[0, at], row[1, at], row[2, at] = x, out, -1
    meta[0] = count + opened


@_inline
def _clip_code(x, y, right, bottom):
    code = 0
    if x < 0:
        code |= _LEFT
    elif x > right:
        code |= _RIGHT
    if y < 0:
        code |= _TOP
    elif y > bottom:
        code |= _BOTTOM
    return code


@_kernel
def _clip_line(x1, y1, x2, y2, width, height):
    """SDL_gfx ``_clipLine`` (Cohen-Sutherland, float32 slope, Sint16 ends).

    Returns ``(draw, x1, y1, x2, y2)``; the ends may come back swapped, as in C.
    """
    right, bottom = width - 1, height - 1
    while True:
        code1 = _clip_code(x1, y1, right, bottom)
        code2 = _clip_code(x2, y2, right, bottom)
        if (code1 | code2) == 0:
            return True, x1, y1, x2, y2
        if code1 & code2:
            return False, x1, y1, x2, y2
        if code1 == 0:
            x1, x2 = x2, x1
            y1, y2 = y2, y1
            code1, code2 = code2, code1
        if x2 != x1:
            m = np.float32(y2 - y1) / np.float32(x2 - x1)
        else:
            m = np.float32(1.0)
        if code1 & _LEFT:
            y1 = _i16(y1 + _i16(int(np.float32(0 - x1) * m)))
            x1 = 0
        elif code1 & _RIGHT:
            y1 = _i16(y1 + _i16(int(np.float32(right - x1) * m)))
            x1 = right
        elif code1 & _BOTTOM:
            if x2 != x1:
                x1 = _i16(x1 + _i16(int(np.float32(bottom - y1) / m)))
            y1 = bottom
        elif code1 & _TOP:
            if x2 != x1:
                x1 = _i16(x1 + _i16(int(np.float32(0 - y1) / m)))
            y1 = 0


@_kernel
def _aaline_record(x1, y1, x2, y2, width, height, rec):
    """Set up SDL_gfx ``_aalineColor(..., draw_endpoint=0)`` in ``rec``.

    ``rec`` (int64[_RECORD]) receives ``kind``, its parameters and, in the
    last two fields, the rows the line touches (``top > bottom`` if none).
    VLINE ``x, y_top, y_bottom``; HLINE ``y, x_left, x_right``; Wu lines
    ``first_x, first_y, x0, y0, last_step, xdir, erradj`` where step ``n``
    (1..last_step) is the C loop's n-th iteration from ``(x0, y0)``.
    """
    rec[:] = 0
    rec[8], rec[9] = 1, 0
    draw, x1, y1, x2, y2 = _clip_line(x1, y1, x2, y2, width, height)
    if not draw:
        rec[0] = _SKIP
        return
    xx0, yy0, xx1, yy1 = x1, y1, x2, y2
    if yy0 > yy1:
        xx0, yy0, xx1, yy1 = xx1, yy1, xx0, yy0
    rec[8], rec[9] = yy0, yy1
    dx = xx1 - xx0
    dy = yy1 - yy0
    if dx == 0:  # vertical (or one pixel): drawn solid, both ends included
        rec[0], rec[1], rec[2], rec[3] = _VLINE, x1, yy0, yy0 + dy
        return
    if dy == 0:  # horizontal: solid, both ends included
        rec[0], rec[1] = _HLINE, y1
        rec[2], rec[3] = min(xx0, xx0 + dx), max(xx0, xx0 + dx)
        return
    xdir = 1
    if dx < 0:
        xdir = -1
        dx = -dx
    if dy > dx:
        rec[0] = _WU_Y
        erradj = (((dx << 16) // dy) << 16) & 0xFFFFFFFF
        last = dy - 1
    else:
        erradj = (((dy << 16) // dx) << 16) & 0xFFFFFFFF
        # dx == dy: erradj is 0 and C's "erracc <= erracctmp" rolls over on
        # every step, a pure diagonal with weight 0.
        rec[0] = _WU_X if erradj != 0 else _WU_DIAG
        last = dx - 1
    rec[1], rec[2], rec[3], rec[4] = x1, y1, xx0, yy0
    rec[5], rec[6], rec[7] = last, xdir, erradj


@_inline
def _outside(spans, count, x):
    """Whether pixel ``x`` lies outside all ``count`` spans (see _gfx_span_table)."""
    for s in range(count):
        if spans[2 * s] <= x <= spans[2 * s + 1]:
            return False
    return True


@_inline
def _aaline_row(records, j, row, color, palette, spans, count, runs, meta, scratch):
    """Paint row ``row`` of the anti-aliased line ``records[j]`` (see _aaline_record).

    Single pixels inside the ``count`` ``spans`` the polygon's fill paints
    next on this row are skipped: the fill overwrites them whatever they hold
    (about half of an outline's pixels). An x-major line's pixels on the row
    are consecutive and go in as one stretch (:func:`_blend_steps`).
    ``scratch``: a (3, capacity) run buffer.
    """
    if row < records[j, 8] or row > records[j, 9]:
        return
    kind = records[j, 0]
    if kind == _VLINE:
        if _outside(spans, count, records[j, 1]):
            _set(runs, meta, records[j, 1], color)
        return
    if kind == _HLINE:
        _fill(runs, meta, records[j, 2], records[j, 3], color, palette)
        return
    if row == records[j, 2] and _outside(spans, count, records[j, 1]):  # first pixel, solid
        _set(runs, meta, records[j, 1], color)
    x0, y0, last = records[j, 3], records[j, 4], records[j, 5]
    xdir, erradj = records[j, 6], records[j, 7]
    if kind == _WU_Y:  # one step per row: a pixel and its neighbour in x
        n = row - y0
        if 1 <= n <= last:
            acc = n * erradj
            wgt = (acc >> 24) & 255
            x = x0 + xdir * (acc >> 32)
            if _outside(spans, count, x):
                _blend(runs, meta, x, color, (255 * (255 - wgt)) >> 8)
            if _outside(spans, count, x + xdir):
                _blend(runs, meta, x + xdir, color, (255 * wgt) >> 8)
    elif kind == _WU_DIAG:  # the paired pixel gets weight 0: no change
        n = row - y0
        if 1 <= n <= last and _outside(spans, count, x0 + xdir * n):
            _blend(runs, meta, x0 + xdir * n, color, (255 * 255) >> 8)
    else:  # x-major: the steps whose y (or y + 1, the paired pixel) is `row`
        # Steps n of block b have y = y0 + b: those with b = row - y0 put
        # their own pixel on this row, those with b = row - y0 - 1 their
        # paired one. Each block is a run of consecutive steps, so the row's
        # pixels are the consecutive steps from the earlier block's first to
        # the later block's last (pixels the polygon's fill covers next are
        # blended too: the fill overwrites them whatever they hold).
        m = row - y0
        paired_first, paired_stop = _wu_block(m - 1, erradj, last)
        own_first, own_stop = _wu_block(m, erradj, last)
        first = paired_first if paired_first <= paired_stop else own_first
        stop = own_stop if own_first <= own_stop else paired_stop
        if first <= stop:
            _blend_steps(runs, meta, scratch, x0, xdir, first, stop, paired_stop, erradj, color)


@_inline
def _wu_block(block, erradj, last):
    """The steps ``n`` (1..last) of an x-major Wu line whose minor coordinate
    has advanced ``block`` times, ``(first, stop)``; empty if first > stop."""
    if block < 0:
        return 1, 0
    # ceil(m * 2**32 / erradj) in float64 is exact: the numerator is exact
    # (< 2**53) and an inexact quotient is >= 1 / erradj away from an
    # integer, far beyond the division's rounding error.
    first = max(1, math.ceil((block << 32) / erradj))
    stop = min(last, math.ceil(((block + 1) << 32) / erradj) - 1)
    return first, stop


@_inline
def _blend_steps(runs, meta, scratch, x0, xdir, first, stop, paired_stop, erradj, color):
    """Blend the pixels of Wu steps ``first..stop`` (at ``x0 + xdir * n``) on
    this row: weight ``255 - wgt`` for a step's own pixel, ``wgt`` for the
    paired pixel of steps up to ``paired_stop`` (see _aaline_row).

    The consecutive pixels become runs in ``scratch`` (3, capacity), read
    over the runs beneath in one pass, and replace that stretch of the row
    at once: one by one, each would search the row and shift its tail.
    """
    width, count = meta[1], meta[0]
    lo = x0 + xdir * (first if xdir > 0 else stop)
    hi = x0 + xdir * (stop if xdir > 0 else first)
    lo, hi = max(lo, 0), min(hi, width - 1)
    if lo > hi:
        return
    i = _run_at(runs, count, lo)
    head = i if runs[0, i] == lo else i + 1  # runs kept before the stretch
    k = 0
    for x in range(lo, hi + 1):
        while i + 1 < count and runs[0, i + 1] <= x:
            i += 1
        d = runs[1, i]
        n = (x - x0) * xdir
        wgt = ((n * erradj) >> 24) & 255
        alpha = (255 * wgt) >> 8 if n <= paired_stop else (255 * (255 - wgt)) >> 8
        out = 0
        for shift in (32, 16, 0):
            dc = (d >> shift) & 255
            cc = (color >> shift) & 255
            out |= ((dc + (((cc - dc) * alpha) >> 8)) & 255) << shift
        if k == 0 or scratch[1, k - 1] != out:
            scratch[0, k], scratch[1, k], scratch[2, k] = x, out, -1
            k += 1
    # Run i holds pixel hi; what follows the stretch keeps its colour.
    tail = hi + 1 < width and (i + 1 >= count or runs[0, i + 1] > hi + 1)
    tail_color, tail_palette = runs[1, i], runs[2, i]
    rest = i + 1  # the first old run after the stretch
    dest = head + k + (1 if tail else 0)
    _move_runs(runs, rest, dest, count)
    for t in range(k):
        runs[0, head + t], runs[1, head + t], runs[2, head + t] = scratch[0, t], scratch[1, t], scratch[2, t]
    if tail:
        runs[0, head + k], runs[1, head + k], runs[2, head + k] = hi + 1, tail_color, tail_palette
    meta[0] = dest + count - rest


@_inline
def _sort_small(values, count):
    for i in range(1, count):
        v = values[i]
        j = i - 1
        while j >= 0 and values[j] > v:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v


# Polygon ``i`` of a flat vertex list is ``vx[a:b], vy[a:b]`` with ``a, b =
# start[i], start[i + 1]``. The painting functions take ``(vx, vy, a, b)``
# rather than slices: every slice is a new array view whose reference count
# is updated atomically, a cost that showed at ~100 polygon rows per frame.


@_inline
def _edge_downwards(vx, vy, a, b, e):
    """Polygon edge ``e`` (from the previous vertex, cyclically in ``a..b - 1``)
    with its ends ordered top to bottom, as the C fill loops take it:
    ``(sloped, x1, y1, x2, y2)``, ``sloped`` False for a horizontal edge."""
    prev = b - 1 if e == a else e - 1
    if vy[prev] < vy[e]:
        return True, vx[prev], vy[prev], vx[e], vy[e]
    if vy[prev] > vy[e]:
        return True, vx[e], vy[e], vx[prev], vy[prev]
    return False, vx[e], vy[e], vx[prev], vy[prev]


@njit(cache=True)
def _gfx_span_table(vx, vy, start, bounds, height):
    """The spans SDL_gfx ``filledPolygonColorMT`` draws, for every row of every
    polygon (Sint16 vertices), computed edge by edge.

    Returns ``(first, count, ends)``: polygon ``i``'s row ``y`` (within its
    vertex rows, clipped to the canvas) is entry ``k = first[i] + y -
    max(miny, 0)``, with ``count[k]`` spans, span ``s`` being
    ``ends[k, 2s]..ends[k, 2s + 1]`` (inclusive, unclipped, ends ordered as
    ``hlineColor`` orders them). One pass per edge over its rows replaces
    a pass over every edge per row.
    """
    polygons = start.shape[0] - 1
    first = np.zeros(polygons, np.int64)
    vertices, total = 2, 0
    for i in range(polygons):
        vertices = max(vertices, start[i + 1] - start[i])
        first[i] = total
        lo, hi = max(bounds[2, i], 0), min(bounds[3, i], height - 1)
        if lo <= hi:
            total += hi - lo + 1
    count = np.zeros(total, np.int64)
    ends = np.empty((total, vertices), np.int64)
    for i in range(polygons):
        a, b = start[i], start[i + 1]
        lo, hi, maxy = max(bounds[2, i], 0), min(bounds[3, i], height - 1), bounds[3, i]
        if lo > hi:
            continue
        for e in range(a, b):
            sloped, x1, y1, x2, y2 = _edge_downwards(vx, vy, a, b, e)
            if not sloped:
                continue
            # C: rows y1 <= y < y2, and the bottom row for an edge ending there.
            stop = min(y2 - 1, hi)
            if y2 == maxy and maxy <= hi:
                stop = maxy
            y = max(y1, lo)
            if y > stop:
                continue
            # C's (65536 * (y - y1)) / (y2 - y1), stepped from row to row: the
            # quotient grows by 65536 // dy and the remainder by 65536 % dy,
            # carrying one when it reaches dy (exact; a division per row of
            # the ~10**9 numerators of a far vertex took ~70 ns here).
            dy = y2 - y1
            quotient, remainder = divmod(65536 * (y - y1), dy)
            grow, grow_remainder = divmod(65536, dy)
            k = first[i] + y - lo
            for _ in range(y, stop + 1):
                ends[k, count[k]] = _i32(_i32(_i32(quotient) * (x2 - x1)) + _i32(65536 * x1))
                count[k] += 1
                k += 1
                quotient += grow
                remainder += grow_remainder
                if remainder >= dy:
                    remainder -= dy
                    quotient += 1
        for k in range(first[i], first[i] + hi - lo + 1):
            ints = ends[k]
            n = count[k]
            _sort_small(ints, n)
            for j in range(0, n - 1, 2):
                xa = _i32(ints[j] + 1)
                xa = _i16((xa >> 16) + ((xa & 32768) >> 15))
                xb = _i32(ints[j + 1] - 1)
                xb = _i16((xb >> 16) + ((xb & 32768) >> 15))
                ints[j], ints[j + 1] = min(xa, xb), max(xa, xb)  # hlineColor swaps its ends
            count[k] = n // 2
    return first, count, ends


@_inline
def _draw_spans(vx, vy, a, b, miny, maxy, row, ints):
    """The spans pygame ``draw_fillpoly`` (``draw_filltri`` for 3 vertices)
    draws on ``row``; ``miny``/``maxy`` are the extreme vertex rows.

    Returns the number of spans; span ``i`` joins ``ints[2i]`` and
    ``ints[2i + 1]`` (either order, unclipped). ``ints`` needs room for
    ``3 * (b - a)`` values.
    """
    if row < miny or row > maxy:
        return 0
    if b - a == 3:
        ints[0], ints[1] = _filltri_span(vx, vy, a, row)
        return 1
    if miny == maxy:  # one pixel high
        minx, maxx = vx[a], vx[a]
        for i in range(a, b):
            minx, maxx = min(minx, vx[i]), max(maxx, vx[i])
        ints[0], ints[1] = minx, maxx
        return 1
    count = 0
    for i in range(a, b):
        sloped, x1, y1, x2, y2 = _edge_downwards(vx, vy, a, b, i)
        if not sloped:
            continue
        if (y1 <= row < y2) or (row == maxy and y2 == maxy):
            intersect = np.float32(_i32((row - y1) * (x2 - x1))) / np.float32(y2 - y1)
            if count % 2 == 0:
                whole = np.floor(intersect)
            else:
                whole = np.ceil(intersect)
            ints[count] = int(whole) + x1
            count += 1
    _sort_small(ints, count)
    count -= count % 2  # C pairs them up; an odd one out is never drawn
    # Horizontal edges strictly inside the y range (drawn after all rows in
    # C; same colour, plain writes, so drawing them now changes nothing).
    for i in range(a, b):
        prev = b - 1 if i == a else i - 1
        if vy[i] == row and vy[prev] == row and miny < row < maxy:
            ints[count], ints[count + 1] = vx[i], vx[prev]
            count += 2
    return count // 2


@_inline
def _filltri_span(vx, vy, a, row):
    """The span pygame ``draw_filltri`` draws on ``row`` (vertices ``a..a + 2``;
    ``row`` within their rows)."""
    p0x, p1x, p2x = vx[a], vx[a + 1], vx[a + 2]
    p0y, p1y, p2y = vy[a], vy[a + 1], vy[a + 2]
    if p1y < p0y:
        p0x, p0y, p1x, p1y = p1x, p1y, p0x, p0y
    if p2y < p1y:
        p1x, p1y, p2x, p2y = p2x, p2y, p1x, p1y
        if p1y < p0y:
            p0x, p0y, p1x, p1y = p1x, p1y, p0x, p0y
    if p0y == p1y and p1y == p2y and p0x == p1x and p1x != p2x:
        p1x, p1y, p2x, p2y = p2x, p2y, p1x, p1y
    d1 = np.float32((p2x - p0x) / ((p2y - p0y) + 1e-17))
    d2 = np.float32((p1x - p0x) / ((p1y - p0y) + 1e-17))
    d3 = np.float32((p2x - p1x) / ((p2y - p1y) + 1e-17))
    x1 = p0x + int(np.float32(row - p0y) * d1)
    if row < p1y:
        x2 = p0x + int(np.float32(row - p0y) * d2)
    else:
        x2 = p1x + int(np.float32(row - p1y) * d3)
    return x1, x2


@_inline
def _spans_cover_row(ints, count, width):
    """Whether one of ``count`` spans in ``ints`` (see _draw_spans) covers
    pixels ``0..width - 1``."""
    for i in range(count):
        lo, hi = min(ints[2 * i], ints[2 * i + 1]), max(ints[2 * i], ints[2 * i + 1])
        if lo <= 0 and hi >= width - 1:
            return True
    return False


@njit(cache=True)
def _vertex_bounds(vx, vy, start):
    """Per polygon its vertices' bounds: (4, P) int64 rows minx, maxx, miny, maxy."""
    count = start.shape[0] - 1
    bounds = np.empty((4, count), np.int64)
    for i in range(count):
        a, b = start[i], start[i + 1]
        bounds[0, i], bounds[1, i] = vx[a:b].min(), vx[a:b].max()
        bounds[2, i], bounds[3, i] = vy[a:b].min(), vy[a:b].max()
    return bounds


@njit(cache=True)
def _gfx_records(vx, vy, start, width, height):
    """Wu-line records (E, _RECORD) of every SDL_gfx polygon edge.

    Edge ``j`` of polygon ``i`` is record ``start[i] + j``: aapolygon draws
    vertex ``j`` to ``j + 1``, then the closing edge. Every pixel an edge or
    the fill touches lies within its polygon's vertex rows.
    """
    records = np.zeros((vx.shape[0], _RECORD), np.int64)
    for i in range(start.shape[0] - 1):
        a, b = start[i], start[i + 1]
        for j in range(a, b):
            k = j + 1 if j + 1 < b else a
            _aaline_record(vx[j], vy[j], vx[k], vy[k], width, height, records[j])
    return records


@njit(cache=True)
def _rows_to_polygons(bounds, height):
    """For each canvas row, the polygons whose vertex rows include it, in order.

    Returns CSR arrays ``(offsets (height + 1,), polygons)``: row ``r``'s
    polygons are ``polygons[offsets[r]:offsets[r + 1]]``, ascending, so
    painter's order is kept while rows skip the (often hundreds of, during
    the start-of-episode zoom) polygons elsewhere.
    """
    count = bounds.shape[1]
    lo = np.maximum(bounds[2], 0)
    hi = np.minimum(bounds[3], height - 1)
    offsets = np.zeros(height + 1, np.int64)
    for i in range(count):
        if lo[i] <= hi[i]:
            offsets[lo[i] + 1 : hi[i] + 2] += 1
    for r in range(height):
        offsets[r + 1] += offsets[r]
    polygons = np.empty(offsets[height], np.int64)
    fill = offsets[:-1].copy()
    for i in range(count):
        for r in range(lo[i], hi[i] + 1):
            polygons[fill[r]] = i
            fill[r] += 1
    return offsets, polygons


@_inline
def _paint_gfx_row(row, gfx, runs, meta, scratch, background, background_palette):
    """Canvas row ``row``, cleared to ``background``, then each SDL_gfx polygon
    of the row (see _rows_to_polygons): ``aapolygon``, then ``filled_polygon``.

    Starts instead at the last polygon whose fill covers the whole row (the
    background square, mostly): everything painted before it is hidden.
    ``gfx`` is what _gfx_polygons prepares; colours are packed pixels.
    """
    vx, vy, start, color, palette, records, bounds, offsets, polygons, spans = gfx
    first_row, count, ends = spans
    width = meta[1]
    first, last = offsets[row], offsets[row + 1]
    covered = False
    for n in range(last - 1, first - 1, -1):
        i = polygons[n]
        if bounds[0, i] > 0 or bounds[1, i] < width - 1:
            continue
        k = first_row[i] + row - max(bounds[2, i], 0)
        if _spans_cover_row(ends[k], count[k], width):
            _clear(runs, meta, color[i], palette[i])
            first = n + 1
            covered = True
            break
    if not covered:
        _clear(runs, meta, background, background_palette)
    for n in range(first, last):
        i = polygons[n]
        k = first_row[i] + row - max(bounds[2, i], 0)
        row_spans, row_count = ends[k], count[k]
        for j in range(start[i], start[i + 1]):
            _aaline_row(records, j, row, color[i], palette[i], row_spans, row_count, runs, meta, scratch)
        for s in range(row_count):
            _fill(runs, meta, row_spans[2 * s], row_spans[2 * s + 1], color[i], palette[i])


@_inline
def _paint_draw_row(row, vx, vy, start, color, palette, bounds, first, ints, runs, meta):
    """Canvas row ``row`` of each ``pygame.draw.polygon`` from ``first`` on, in turn
    (``drawhorzlineclipbounding`` per span: ends ordered, clipped)."""
    for i in range(first, start.shape[0] - 1):
        if row < bounds[2, i] or row > bounds[3, i]:
            continue
        spans = _draw_spans(vx, vy, start[i], start[i + 1], bounds[2, i], bounds[3, i], row, ints)
        for s in range(spans):
            x1, x2 = ints[2 * s], ints[2 * s + 1]
            _fill(runs, meta, min(x1, x2), max(x1, x2), color[i], palette[i])


@_inline
def _last_draw_cover(row, vx, vy, start, bounds, ints, width):
    """The last ``pygame.draw.polygon`` whose fill covers all of ``row``, or -1."""
    for i in range(start.shape[0] - 2, -1, -1):
        if bounds[0, i] > 0 or bounds[1, i] < width - 1 or row < bounds[2, i] or row > bounds[3, i]:
            continue
        spans = _draw_spans(vx, vy, start[i], start[i + 1], bounds[2, i], bounds[3, i], row, ints)
        if _spans_cover_row(ints, spans, width):
            return i
    return -1


@_inline
def _blit_row(row, text, text_x, text_y, runs, meta):
    """Row ``row`` of an opaque blit of ``text`` (h, w) packed pixels at (text_x, text_y).

    The text's pixels replace the covered span as its own runs, spliced in at
    once (a glyph row holds dozens of runs; inserting them one by one would
    shift the rest of the row each time).
    """
    ty = row - text_y
    if ty < 0 or ty >= text.shape[0]:
        return
    width = meta[1]
    lo, hi = max(text_x, 0), min(text_x + text.shape[1], width) - 1
    if lo > hi:
        return
    pixels = text[ty]
    m = 1  # runs of the text's row within lo..hi
    for x in range(lo + 1, hi + 1):
        if pixels[x - text_x] != pixels[x - 1 - text_x]:
            m += 1
    _fill(runs, meta, lo, hi, -1, -1)  # a placeholder run: -1 is no colour, never merged
    at = _run_at(runs, meta[0], lo)
    count = meta[0]
    _move_runs(runs, at + 1, at + m, count)  # open m - 1 slots after the placeholder
    put = at
    for x in range(lo, hi + 1):
        if x == lo or pixels[x - text_x] != pixels[x - 1 - text_x]:
            runs[0, put], runs[1, put], runs[2, put] = x, pixels[x - text_x], -1
            put += 1
    meta[0] = count + m - 1


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


@_inline
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


@njit(cache=True)
def _palette(gcolor, dcolor, hcolor, background):
    """The frame's distinct 0xRRGGBB colours (the scene's ``background``
    included) and the index among them of each polygon's colour and of it."""
    distinct = np.unique(np.concatenate((gcolor, dcolor, hcolor, np.full(1, background, np.int64))))
    return (distinct, np.searchsorted(distinct, gcolor), np.searchsorted(distinct, dcolor),
            np.searchsorted(distinct, hcolor), np.searchsorted(distinct, background))


@njit(cache=True)
def _packed_colors(colors):
    packed = np.empty(colors.shape[0], np.int64)
    for i in range(colors.shape[0]):
        packed[i] = _pack(colors[i])
    return packed


@_kernel
def _paint_frame_rows(gfx, scene, hud, text, ints, runs, meta, seen, seen_count, scratch, shrink, tables):
    """Paint every row of the flipped frame and shrink it, in X into ``line``,
    then in Y into the frame (see render_state_frame; the tuples hold
    its arguments, prepared, and the shrink state of _shrink_state)."""
    xplan, window_at, yplan, output_of, (line, acc, since, frame) = shrink
    dvx, dvy, dstart, dcolor, dpalette, dbounds, drows = scene
    hvx, hvy, hstart, hcolor, hpalette, hbounds, hrows = hud
    text_pixels, text_x, text_y, background, background_palette = text
    height, width = output_of.shape[0], meta[1]
    seen_count[0] = -1
    for out_row in range(height):
        # A HUD polygon covering the whole row (the panel) hides the scene.
        cover = -1
        if hrows[0] <= out_row <= hrows[1]:
            cover = _last_draw_cover(out_row, hvx, hvy, hstart, hbounds, ints, width)
        if cover >= 0:
            _clear(runs, meta, hcolor[cover], hpalette[cover])
        else:
            row = height - 1 - out_row  # the vertical flip
            _paint_gfx_row(row, gfx, runs, meta, scratch, background, background_palette)
            if drows[0] <= row <= drows[1]:
                _paint_draw_row(
                    row, dvx, dvy, dstart, dcolor, dpalette, dbounds, 0, ints, runs, meta
                )
        if hrows[0] <= out_row <= hrows[1]:
            _paint_draw_row(
                out_row, hvx, hvy, hstart, hcolor, hpalette, hbounds, cover + 1, ints, runs, meta
            )
        _blit_row(out_row, text_pixels, text_x, text_y, runs, meta)
        _shrink_row(runs, meta, seen, seen_count, out_row, xplan, tables, window_at, line, acc,
                    since, yplan, output_of, frame)


@njit(cache=True)
def _row_span(bounds):
    """(2,) the rows from the lowest to the highest vertex of all polygons
    (empty, lo > hi, for none): rows outside have nothing to paint."""
    span = np.array([1, 0], np.int64)
    if bounds.shape[1]:
        span[0], span[1] = bounds[2].min(), bounds[3].max()
    return span


@njit(cache=True)
def _gfx_polygons(vx, vy, start, color, palette, width, height):
    """SDL_gfx polygons as the row painters take them: (Sint16 vertices x, y, start,
    packed colours, palette rows, edge records, vertex-row bounds, the row ->
    polygons index and the span table)."""
    ivx, ivy = _gfx_ints(vx), _gfx_ints(vy)
    bounds = _vertex_bounds(ivx, ivy, start)
    offsets, polygons = _rows_to_polygons(bounds, height)
    return (ivx, ivy, start, _packed_colors(color), palette,
            _gfx_records(ivx, ivy, start, width, height), bounds, offsets, polygons,
            _gfx_span_table(ivx, ivy, start, bounds, height))


@njit(cache=True)
def _draw_polygons(vx, vy, start, color, palette):
    """``pygame.draw.polygon`` polygons as the row painters take them: (int vertices
    x, y, start, packed colours, palette rows, vertex-row bounds, their row span)."""
    ivx, ivy = _draw_ints(vx), _draw_ints(vy)
    bounds = _vertex_bounds(ivx, ivy, start)
    return ivx, ivy, start, _packed_colors(color), palette, bounds, _row_span(bounds)


@njit(cache=True)
def _row_buffers(width, polygon_vertices):
    """A painted row's runs (3, width + 2), its meta (count, width), a copy of
    the previous row's runs and its count, a scratch row of runs, and the
    span buffer of the polygon code."""
    meta = np.array([1, width], np.int64)
    runs = np.zeros((3, width + 2), np.int64)
    seen = np.zeros((3, width + 2), np.int64)
    scratch = np.zeros((3, width + 2), np.int64)
    ints = np.empty(3 * max(polygon_vertices, 4), np.int64)
    return runs, meta, seen, np.zeros(1, np.int64), scratch, ints


@njit(cache=True)
def render_state_frame(
    gvx, gvy, gstart, gcolor,
    dvx, dvy, dstart, dcolor,
    hvx, hvy, hstart, hcolor,
    text, text_x, text_y,
    width, height, out_w, out_h, background=0,
):
    """The reference's state frame, ``smoothscale(flip(scene) + HUD)``.

    Scene (unflipped canvas, filled with ``background``: 0 like the
    reference's fresh Surface, or a colour known to cover it): SDL_gfx polygons
    ``g*`` (``aapolygon`` then ``filled_polygon`` each), then
    ``pygame.draw.polygon`` polygons ``d*``. After the vertical flip: HUD
    polygons ``h*`` (``pygame.draw.polygon``), then the opaque blit of
    ``text`` ((h, w) 0xRRGGBB) at ``(text_x, text_y)``. Vertices are
    float64 (see the module docstring), colours 0xRRGGBB int64; the canvas
    is ``width`` x ``height``. Returns (out_h, out_w, 3) uint8 RGB, as
    ``_create_image_array`` does.
    """
    colors, gpalette, dpalette, hpalette, background_palette = _palette(
        gcolor, dcolor, hcolor, background)
    gfx = _gfx_polygons(gvx, gvy, gstart, gcolor, gpalette, width, height)
    scene = _draw_polygons(dvx, dvy, dstart, dcolor, dpalette)
    hud = _draw_polygons(hvx, hvy, hstart, hcolor, hpalette)
    text_packed = np.empty(text.shape, np.int64)
    for ty in range(text.shape[0]):
        for tx in range(text.shape[1]):
            text_packed[ty, tx] = _pack(np.int64(text[ty, tx]))
    shrink = _shrink_state(width, out_w, height, out_h)
    tables = _colour_tables(_packed_colors(colors), shrink[0])
    runs, meta, seen, seen_count, scratch, ints = _row_buffers(
        width, max(gvx.shape[0], dvx.shape[0], hvx.shape[0]))
    _paint_frame_rows(
        gfx, scene, hud, (text_packed, text_x, text_y, _pack(background), background_palette), ints, runs, meta, seen,
        seen_count, scratch, shrink, tables,
    )
    return shrink[4][3].reshape((out_h, out_w, 3))


@njit(cache=True)
def paint_canvas(gvx, gvy, gstart, gcolor, dvx, dvy, dstart, dcolor, width, height, background):
    """The unflipped (height, width) 0xRRGGBB canvas the scene primitives of
    :func:`render_state_frame` paint on a Surface filled with ``background``
    (for tests against pygame): the same row painting, its runs written out."""
    none = np.full(max(gcolor.shape[0], dcolor.shape[0], 1), -1, np.int64)
    gfx = _gfx_polygons(gvx, gvy, gstart, gcolor, none[: gcolor.shape[0]], width, height)
    dvx_, dvy_, dstart_, dpacked, dpalette, dbounds, drows = _draw_polygons(
        dvx, dvy, dstart, dcolor, none[: dcolor.shape[0]])
    runs, meta, _, _, scratch, ints = _row_buffers(width, max(gvx.shape[0], dvx.shape[0]))
    canvas = np.empty((height, width), np.uint32)
    for row in range(height):
        _paint_gfx_row(row, gfx, runs, meta, scratch, _pack(background), -1)
        _paint_draw_row(row, dvx_, dvy_, dstart_, dpacked, dpalette, dbounds, 0, ints, runs, meta)
        for i in range(meta[0]):
            end = runs[0, i + 1] if i + 1 < meta[0] else width
            canvas[row, runs[0, i] : end] = _unpack(runs[1, i])
    return canvas


@njit(cache=True)
def smoothscale_canvas(canvas, out_w, out_h):
    """``pygame.transform.smoothscale`` (SSE2 shrink) of a (H, W) 0xRRGGBB canvas,
    through the same run shrinking as :func:`render_state_frame` (colours of
    canvases with at most 64 of them get tables, like polygon colours do)."""
    height, width = canvas.shape
    packed = np.empty((height, width), np.int64)
    for y in range(height):
        for x in range(width):
            packed[y, x] = _pack(np.int64(canvas[y, x]))
    colors = np.unique(packed)
    if colors.shape[0] > 64:
        colors = colors[:0]
    xplan, window_at, yplan, output_of, (line, acc, since, frame) = _shrink_state(
        width, out_w, height, out_h)
    tables = _colour_tables(colors, xplan)
    runs, meta, seen, seen_count, _, _ = _row_buffers(width, 0)
    seen_count[0] = -1
    for y in range(height):
        count = 0
        for x in range(width):
            if x == 0 or packed[y, x] != packed[y, x - 1]:
                palette = -1
                if colors.shape[0]:
                    palette = np.searchsorted(colors, packed[y, x])
                runs[0, count], runs[1, count], runs[2, count] = x, packed[y, x], palette
                count += 1
        meta[0] = count
        _shrink_row(runs, meta, seen, seen_count, y, xplan, tables, window_at, line, acc, since,
                    yplan, output_of, frame)
    return frame.reshape((out_h, out_w, 3))
