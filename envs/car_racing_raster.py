"""CarRacing's 96x96 state frame, rasterised row by row without a 1000x800 canvas.

Gymnasium's ``CarRacing`` draws each observation on a 1000x800 pygame Surface
and shrinks it with ``pygame.transform.smoothscale``; moving those ~3 MB of
pixels several times per step is what costs. :func:`render_state_frame`
computes the very same 96x96 result one canvas row at a time, in a
1000-pixel buffer that stays in the L1 cache: each row is painted by exact
ports of the pygame-ce 2.5.8 C code the reference calls, then gathered for
the horizontal shrink; only the 96 shrunk pixels per row are kept for the
vertical one.

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
pixels that a polygon's own fill overwrites next are skipped; and the
shrink's ~10-pixel windows that no write touched inside are summed as
``count * colour``.

Pixels inside are ``r << 32 | g << 16 | b`` (int64): the shrink sums three
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


@_kernel
def _i16(v):
    return ((v + 32768) & 0xFFFF) - 32768


@_kernel
def _i32(v):
    return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648


@_kernel
def _pack(rgb):
    """0xRRGGBB -> the row buffers' pixel ``r << 32 | g << 16 | b``.

    16-bit lanes let smoothscale's sums of whole pixels (<= 11 * 255) be
    taken for all three channels with one 64-bit add per pixel.
    """
    return ((rgb & 0xFF0000) << 16) | ((rgb & 0xFF00) << 8) | (rgb & 0xFF)


@_kernel
def _unpack(pixel):
    """Row-buffer pixel -> 0xRRGGBB."""
    return ((pixel >> 16) & 0xFF0000) | ((pixel >> 8) & 0xFF00) | (pixel & 0xFF)


# A row being painted is ``pixels`` (W,) int64 packed, plus ``dirty`` (w,)
# bool and ``window_of`` (W + 1,) int64. smoothscale shrinks windows of ~10
# pixels into one; a window whose pixels are all equal needs no summing.
# Every write marks the windows where it may create a colour change (between
# pixels c - 1 and c; window_of[c] is the window holding both, or -1) as
# dirty.


@_kernel
def _mark(dirty, window_of, c):
    window = window_of[c]
    if window >= 0:
        dirty[window] = True


@_kernel
def _fill(pixels, dirty, window_of, x1, x2, color):
    """Set pixels ``x1..x2`` (inclusive, clipped to the row) to ``color``.

    A slice assignment: Numba compiles it to a vectorised store loop, which
    an indexed loop (negative-index wrap-around checks) is not.
    """
    lo, hi = max(x1, 0), min(x2, pixels.shape[0] - 1) + 1
    if lo < hi:
        pixels[lo:hi] = color
        _mark(dirty, window_of, lo)
        _mark(dirty, window_of, hi)


@_kernel
def _set(pixels, dirty, window_of, x, color):
    """Set pixel ``x`` (ignored off the row) to ``color``."""
    if 0 <= x < pixels.shape[0]:
        pixels[x] = color
        _mark(dirty, window_of, x)
        _mark(dirty, window_of, x + 1)


@_kernel
def _blend(pixels, dirty, window_of, x, color, alpha):
    """SDL_gfx ``_putPixelAlpha`` (DEFAULT routine, 32 bpp, no alpha mask).

    Each channel becomes ``d + ((c - d) * alpha >> 8)`` (floor shift; the C
    unsigned wrap-around gives exactly this). Pixels and ``color`` are packed
    (see _pack).
    """
    if x < 0 or x >= pixels.shape[0]:
        return
    d = pixels[x]
    out = 0
    for shift in (32, 16, 0):
        dc = (d >> shift) & 255
        cc = (color >> shift) & 255
        out |= ((dc + (((cc - dc) * alpha) >> 8)) & 255) << shift
    _set(pixels, dirty, window_of, x, out)


@_kernel
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


@_kernel
def _outside(spans, count, x):
    """Whether pixel ``x`` lies outside all ``count`` spans (see _gfx_spans)."""
    for s in range(count):
        if spans[2 * s] <= x <= spans[2 * s + 1]:
            return False
    return True


@_kernel
def _aaline_row(records, j, row, color, spans, count, pixels, dirty, window_of):
    """Paint row ``row`` of the anti-aliased line ``records[j]`` (see _aaline_record).

    Pixels inside the ``count`` ``spans`` the polygon's fill paints next on
    this row are skipped: the fill overwrites them whatever they hold (about
    half of an outline's pixels).
    """
    if row < records[j, 8] or row > records[j, 9]:
        return
    kind = records[j, 0]
    if kind == _VLINE:
        if _outside(spans, count, records[j, 1]):
            _set(pixels, dirty, window_of, records[j, 1], color)
        return
    if kind == _HLINE:
        _fill(pixels, dirty, window_of, records[j, 2], records[j, 3], color)
        return
    if row == records[j, 2] and _outside(spans, count, records[j, 1]):  # first pixel, solid
        _set(pixels, dirty, window_of, records[j, 1], color)
    x0, y0, last = records[j, 3], records[j, 4], records[j, 5]
    xdir, erradj = records[j, 6], records[j, 7]
    if kind == _WU_Y:  # one step per row: a pixel and its neighbour in x
        n = row - y0
        if 1 <= n <= last:
            acc = n * erradj
            wgt = (acc >> 24) & 255
            x = x0 + xdir * (acc >> 32)
            if _outside(spans, count, x):
                _blend(pixels, dirty, window_of, x, color, (255 * (255 - wgt)) >> 8)
            if _outside(spans, count, x + xdir):
                _blend(pixels, dirty, window_of, x + xdir, color, (255 * wgt) >> 8)
    elif kind == _WU_DIAG:  # the paired pixel gets weight 0: no change
        n = row - y0
        if 1 <= n <= last and _outside(spans, count, x0 + xdir * n):
            _blend(pixels, dirty, window_of, x0 + xdir * n, color, (255 * 255) >> 8)
    else:  # x-major: the steps whose y (or y + 1, the paired pixel) is `row`
        for pair in range(2):
            m = row - y0 - pair
            if m < 0:
                continue
            # ceil(m * 2**32 / erradj) in float64 is exact: the numerator is
            # exact (< 2**53) and an inexact quotient is >= 1 / erradj away
            # from an integer, far beyond the division's rounding error.
            first = max(1, math.ceil((m << 32) / erradj))
            stop = min(last, math.ceil(((m + 1) << 32) / erradj) - 1)
            for n in range(first, stop + 1):
                x = x0 + xdir * n
                if not _outside(spans, count, x):
                    continue
                wgt = ((n * erradj) >> 24) & 255
                if pair:
                    alpha = (255 * wgt) >> 8
                else:
                    alpha = (255 * (255 - wgt)) >> 8
                _blend(pixels, dirty, window_of, x, color, alpha)


@_kernel
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


@_kernel
def _gfx_spans(vx, vy, a, b, miny, maxy, row, ints):
    """The spans SDL_gfx ``filledPolygonColorMT`` draws on ``row`` (Sint16 vertices).

    Returns the number of spans; span ``i`` is ``ints[2i]..ints[2i + 1]``
    (inclusive, unclipped, ends ordered as ``hlineColor`` orders them).
    """
    if row < miny or row > maxy:
        return 0
    count = 0
    for i in range(a, b):
        prev = b - 1 if i == a else i - 1
        y1, y2 = vy[prev], vy[i]
        if y1 < y2:
            x1, x2 = vx[prev], vx[i]
        elif y1 > y2:
            y1, y2 = vy[i], vy[prev]
            x1, x2 = vx[i], vx[prev]
        else:
            continue
        if (y1 <= row < y2) or (row == maxy and y1 < row <= y2):
            step = _i32((65536 * (row - y1)) // (y2 - y1))
            ints[count] = _i32(_i32(step * (x2 - x1)) + _i32(65536 * x1))
            count += 1
    _sort_small(ints, count)
    for i in range(0, count - 1, 2):
        xa = _i32(ints[i] + 1)
        xa = _i16((xa >> 16) + ((xa & 32768) >> 15))
        xb = _i32(ints[i + 1] - 1)
        xb = _i16((xb >> 16) + ((xb & 32768) >> 15))
        ints[i], ints[i + 1] = min(xa, xb), max(xa, xb)  # hlineColor swaps its ends
    return count // 2


@_kernel
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
        prev = b - 1 if i == a else i - 1
        y1, y2 = vy[prev], vy[i]
        if y1 < y2:
            x1, x2 = vx[prev], vx[i]
        elif y1 > y2:
            y1, y2 = vy[i], vy[prev]
            x1, x2 = vx[i], vx[prev]
        else:
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


@_kernel
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


@_kernel
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


@_kernel
def _paint_gfx_row(
    row, vx, vy, start, color, records, bounds, offsets, polygons, ints,
    pixels, dirty, window_of, background,
):
    """Canvas row ``row``, cleared to ``background``, then each SDL_gfx polygon
    of the row (see _rows_to_polygons): ``aapolygon``, then ``filled_polygon``.

    Starts instead at the last polygon whose fill covers the whole row (the
    background square, mostly): everything painted before it is hidden.
    Colours are packed pixels.
    """
    width = pixels.shape[0]
    first, last = offsets[row], offsets[row + 1]
    covered = False
    for n in range(last - 1, first - 1, -1):
        i = polygons[n]
        if bounds[0, i] > 0 or bounds[1, i] < width - 1:
            continue
        spans = _gfx_spans(vx, vy, start[i], start[i + 1], bounds[2, i], bounds[3, i], row, ints)
        if _spans_cover_row(ints, spans, width):
            _clear(pixels, dirty, window_of, color[i])
            first = n + 1
            covered = True
            break
    if not covered:
        _clear(pixels, dirty, window_of, background)
    for n in range(first, last):
        i = polygons[n]
        a, b = start[i], start[i + 1]
        spans = _gfx_spans(vx, vy, a, b, bounds[2, i], bounds[3, i], row, ints)
        for j in range(a, b):
            _aaline_row(records, j, row, color[i], ints, spans, pixels, dirty, window_of)
        for s in range(spans):
            _fill(pixels, dirty, window_of, ints[2 * s], ints[2 * s + 1], color[i])


@_kernel
def _paint_draw_row(row, vx, vy, start, color, bounds, first, ints, pixels, dirty, window_of):
    """Canvas row ``row`` of each ``pygame.draw.polygon`` from ``first`` on, in turn
    (``drawhorzlineclipbounding`` per span: ends ordered, clipped)."""
    for i in range(first, start.shape[0] - 1):
        spans = _draw_spans(vx, vy, start[i], start[i + 1], bounds[2, i], bounds[3, i], row, ints)
        for s in range(spans):
            x1, x2 = ints[2 * s], ints[2 * s + 1]
            _fill(pixels, dirty, window_of, min(x1, x2), max(x1, x2), color[i])


@_kernel
def _last_draw_cover(row, vx, vy, start, bounds, ints, width):
    """The last ``pygame.draw.polygon`` whose fill covers all of ``row``, or -1."""
    for i in range(start.shape[0] - 2, -1, -1):
        if bounds[0, i] > 0 or bounds[1, i] < width - 1:
            continue
        spans = _draw_spans(vx, vy, start[i], start[i + 1], bounds[2, i], bounds[3, i], row, ints)
        if _spans_cover_row(ints, spans, width):
            return i
    return -1


@_kernel
def _blit_row(row, text, text_x, text_y, pixels, dirty, window_of):
    """Row ``row`` of an opaque blit of ``text`` (h, w) packed pixels at (text_x, text_y)."""
    ty = row - text_y
    if ty < 0 or ty >= text.shape[0]:
        return
    for tx in range(text.shape[1]):
        _set(pixels, dirty, window_of, text_x + tx, text[ty, tx])


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
def _window_of(boundary, width):
    """``window_of`` for a row (see _mark): change point ``c`` (between pixels
    ``c - 1`` and ``c``) lies inside window ``k`` if ``lo_k < c <= boundary[k]``,
    where ``lo_k`` follows the previous boundary; otherwise -1."""
    window_of = np.full(width + 1, -1, np.int64)
    x = 0
    for k in range(boundary.shape[0]):
        window_of[x + 1 : boundary[k] + 1] = k
        x = boundary[k] + 1
    return window_of


@_kernel
def _clear(pixels, dirty, window_of, color):
    """Fill the whole row with ``color``: every window is uniform again."""
    pixels[:] = color
    dirty[:] = False


@_kernel
def _sum_row(pixels, dirty, boundary, sums, last):
    """Gather one row for the X shrink: per output ``k`` the packed sum of the
    whole pixels before ``boundary[k]`` (``sums[k]``) and the boundary pixel
    itself (``last[k]``).

    A clean window's pixels all equal its boundary pixel: a product suffices.
    """
    x = 0
    for k in range(boundary.shape[0]):
        end = boundary[k]
        edge = pixels[end]
        if not dirty[k]:
            acc = (end - x) * edge
        elif end - x == 9 or end - x == 10:
            # 1000 -> 96 pixels: 9 or 10 whole pixels; unrolled, ~20% faster.
            acc = (pixels[x] + pixels[x + 1]) + (pixels[x + 2] + pixels[x + 3])
            acc += (pixels[x + 4] + pixels[x + 5]) + (pixels[x + 6] + pixels[x + 7])
            acc += pixels[x + 8]
            if end - x == 10:
                acc += pixels[x + 9]
        else:
            acc = 0
            for i in range(x, end):
                acc += pixels[i]
        sums[k] = acc
        last[k] = edge
        x = end + 1


@_kernel
def _shrink_row_x(pixels, dirty, plan, work, out):
    """``filter_shrink_X_SSE2`` of one painted row -> ``out`` (3 * w,) uint8,
    channel-major (R block, G block, B block).

    ``plan`` is ``_shrink_plan(W, w)``; ``work`` three (w,) int64 scratch
    rows. Output ``k`` accumulates, besides its whole pixels, the mulhi shares
    of its boundary pixel (``counter[k]``) and of the previous one (the rest).
    The loops over ``k`` have provably non-negative indices, so they vectorise.
    """
    boundary, counter, recip = plan
    sums, last, value = work
    _sum_row(pixels, dirty, boundary, sums, last)
    width = boundary.shape[0]
    for channel in range(3):
        shift = 32 - 16 * channel
        for k in range(width):
            edge = ((last[k] >> shift) & 255) << 2
            value[k] = ((sums[k] >> shift) & 0xFFFF) + ((edge * counter[k]) >> 16)
        for k in range(width - 1):
            edge = ((last[k] >> shift) & 255) << 2
            value[k + 1] += (edge * (_ONE - counter[k])) >> 16
        shrunk = out[channel * width : (channel + 1) * width]
        for k in range(width):
            shrunk[k] = min((value[k] * recip) >> 16, 255)


@_kernel
def _shrink_y(rows, boundary, counter, recip, acc, out):
    """``filter_shrink_Y_SSE2``: ``rows`` (H, L) uint8 -> ``out`` (h, L) uint8,
    using ``acc`` (L,) int64 as the accumulator line."""
    lanes = rows.shape[1]
    acc[:] = 0
    y = 0
    for k in range(boundary.shape[0]):
        end = boundary[k]
        while y < end:
            for i in range(lanes):
                acc[i] += rows[y, i]
            y += 1
        yc = counter[k]
        yf = _ONE - yc
        for i in range(lanes):
            edge = np.int64(rows[end, i]) << 2
            out[k, i] = min(((((edge * yc) >> 16) + acc[i]) * recip) >> 16, 255)
            acc[i] = (edge * yf) >> 16
        y = end + 1


@njit(cache=True)
def _shrink_work(width, out_w):
    """For shrinking rows of ``width`` to ``out_w``: the plan, scratch rows,
    ``dirty`` and ``window_of`` (see _shrink_row_x and _mark)."""
    plan = _shrink_plan(width, out_w)
    work = (np.empty(out_w, np.int64), np.empty(out_w, np.int64), np.empty(out_w, np.int64))
    return plan, work, np.zeros(out_w, np.bool_), _window_of(plan[0], width)


@njit(cache=True)
def _shrink_columns(shrunk, out_h):
    """Shrink the X-shrunk rows (H, 3 * w) uint8 in Y: (out_h, w, 3) uint8 RGB."""
    height, lanes = shrunk.shape
    out_w = lanes // 3
    yb, yc, yr = _shrink_plan(height, out_h)
    planar = np.empty((out_h, lanes), np.uint8)
    _shrink_y(shrunk, yb, yc, yr, np.empty(lanes, np.int64), planar)
    out = np.empty((out_h, out_w, 3), np.uint8)
    for y in range(out_h):
        for channel in range(3):
            for x in range(out_w):
                out[y, x, channel] = planar[y, channel * out_w + x]
    return out


@njit(cache=True)
def _packed_colors(colors):
    packed = np.empty(colors.shape[0], np.int64)
    for i in range(colors.shape[0]):
        packed[i] = _pack(colors[i])
    return packed


@_kernel
def _paint_frame_rows(gfx, scene, hud, text, ints, pixels, dirty, window_of, plan, work, shrunk):
    """Paint every output row of the flipped frame and shrink it in X into
    ``shrunk`` (H, 3 * w) (see render_state_frame; the tuples hold its
    arguments, prepared)."""
    gvx, gvy, gstart, gcolor, records, gbounds, offsets, polygons = gfx
    dvx, dvy, dstart, dcolor, dbounds = scene
    hvx, hvy, hstart, hcolor, hbounds = hud
    text_pixels, text_x, text_y = text
    height, width = shrunk.shape[0], pixels.shape[0]
    for out_row in range(height):
        # A HUD polygon covering the whole row (the panel) hides the scene.
        cover = _last_draw_cover(out_row, hvx, hvy, hstart, hbounds, ints, width)
        if cover >= 0:
            _clear(pixels, dirty, window_of, hcolor[cover])
        else:
            row = height - 1 - out_row  # the vertical flip
            _paint_gfx_row(
                row, gvx, gvy, gstart, gcolor, records, gbounds, offsets, polygons, ints,
                pixels, dirty, window_of, 0,
            )
            _paint_draw_row(
                row, dvx, dvy, dstart, dcolor, dbounds, 0, ints, pixels, dirty, window_of
            )
        _paint_draw_row(
            out_row, hvx, hvy, hstart, hcolor, hbounds, cover + 1, ints, pixels, dirty, window_of
        )
        _blit_row(out_row, text_pixels, text_x, text_y, pixels, dirty, window_of)
        _shrink_row_x(pixels, dirty, plan, work, shrunk[out_row])


@njit(cache=True)
def _gfx_polygons(vx, vy, start, color, width, height):
    """SDL_gfx polygons as the row painters take them: (Sint16 vertices x, y, start,
    packed colours, edge records, vertex-row bounds, and the row -> polygons index)."""
    ivx, ivy = _gfx_ints(vx), _gfx_ints(vy)
    bounds = _vertex_bounds(ivx, ivy, start)
    offsets, polygons = _rows_to_polygons(bounds, height)
    return (ivx, ivy, start, _packed_colors(color), _gfx_records(ivx, ivy, start, width, height),
            bounds, offsets, polygons)


@njit(cache=True)
def _draw_polygons(vx, vy, start, color):
    """``pygame.draw.polygon`` polygons as the row painters take them: (int vertices
    x, y, start, packed colours, vertex-row bounds)."""
    ivx, ivy = _draw_ints(vx), _draw_ints(vy)
    return ivx, ivy, start, _packed_colors(color), _vertex_bounds(ivx, ivy, start)


@njit(cache=True)
def render_state_frame(
    gvx, gvy, gstart, gcolor,
    dvx, dvy, dstart, dcolor,
    hvx, hvy, hstart, hcolor,
    text, text_x, text_y,
    width, height, out_w, out_h,
):
    """The reference's state frame, ``smoothscale(flip(scene) + HUD)``.

    Scene (unflipped canvas, zeroed like a fresh Surface): SDL_gfx polygons
    ``g*`` (``aapolygon`` then ``filled_polygon`` each), then
    ``pygame.draw.polygon`` polygons ``d*``. After the vertical flip: HUD
    polygons ``h*`` (``pygame.draw.polygon``), then the opaque blit of
    ``text`` ((h, w) 0xRRGGBB) at ``(text_x, text_y)``. Vertices are
    float64 (see the module docstring), colours 0xRRGGBB int64; the canvas
    is ``width`` x ``height``. Returns (out_h, out_w, 3) uint8 RGB, as
    ``_create_image_array`` does.
    """
    gfx = _gfx_polygons(gvx, gvy, gstart, gcolor, width, height)
    scene = _draw_polygons(dvx, dvy, dstart, dcolor)
    hud = _draw_polygons(hvx, hvy, hstart, hcolor)
    text_packed = np.empty(text.shape, np.int64)
    for ty in range(text.shape[0]):
        for tx in range(text.shape[1]):
            text_packed[ty, tx] = _pack(np.int64(text[ty, tx]))
    plan, work, dirty, window_of = _shrink_work(width, out_w)
    pixels = np.zeros(width, np.int64)
    shrunk = np.empty((height, 3 * out_w), np.uint8)
    ints = np.empty(3 * max(gvx.shape[0], dvx.shape[0], hvx.shape[0], 4), np.int64)
    _paint_frame_rows(
        gfx, scene, hud, (text_packed, text_x, text_y),
        ints, pixels, dirty, window_of, plan, work, shrunk,
    )
    return _shrink_columns(shrunk, out_h)


@_kernel
def _paint_canvas_rows(gfx, scene, background, ints, pixels, dirty, window_of, canvas):
    """The scene rows of paint_canvas, unpacked into ``canvas``."""
    gvx, gvy, gstart, gcolor, records, gbounds, offsets, polygons = gfx
    dvx, dvy, dstart, dcolor, dbounds = scene
    for row in range(canvas.shape[0]):
        _paint_gfx_row(
            row, gvx, gvy, gstart, gcolor, records, gbounds, offsets, polygons, ints,
            pixels, dirty, window_of, background,
        )
        _paint_draw_row(row, dvx, dvy, dstart, dcolor, dbounds, 0, ints, pixels, dirty, window_of)
        for x in range(canvas.shape[1]):
            canvas[row, x] = _unpack(pixels[x])


@njit(cache=True)
def paint_canvas(gvx, gvy, gstart, gcolor, dvx, dvy, dstart, dcolor, width, height, background):
    """The unflipped (height, width) 0xRRGGBB canvas the scene primitives of
    :func:`render_state_frame` paint on a Surface filled with ``background``
    (for tests against pygame)."""
    gfx = _gfx_polygons(gvx, gvy, gstart, gcolor, width, height)
    scene = _draw_polygons(dvx, dvy, dstart, dcolor)
    canvas = np.empty((height, width), np.uint32)
    pixels = np.zeros(width, np.int64)
    dirty = np.zeros(0, np.bool_)  # no windows: nothing to mark
    window_of = np.full(width + 1, -1, np.int64)
    ints = np.empty(3 * max(gvx.shape[0], dvx.shape[0], 4), np.int64)
    _paint_canvas_rows(
        gfx, scene, _pack(background), ints, pixels, dirty, window_of, canvas,
    )
    return canvas


@njit(cache=True)
def smoothscale_canvas(canvas, out_w, out_h):
    """``pygame.transform.smoothscale`` (SSE2 shrink) of a (H, W) 0xRRGGBB canvas,
    through the same row gathering as :func:`render_state_frame`."""
    height, width = canvas.shape
    plan, work, dirty, window_of = _shrink_work(width, out_w)
    pixels = np.zeros(width, np.int64)
    shrunk = np.empty((height, 3 * out_w), np.uint8)
    for row in range(height):
        _clear(pixels, dirty, window_of, 0)
        for x in range(width):
            pixel = _pack(np.int64(canvas[row, x]))
            if x > 0 and pixel == pixels[x - 1]:
                pixels[x] = pixel  # no colour change: the window stays clean
            else:
                _set(pixels, dirty, window_of, x, pixel)
        _shrink_row_x(pixels, dirty, plan, work, shrunk[row])
    return _shrink_columns(shrunk, out_h)
