"""pygame-ce's polygon drawing, ported exactly and evaluated one canvas row at a time.

``gfxdraw.aapolygon`` (SDL_gfx Wu lines after ``_clipLine``), ``gfxdraw.filled_polygon``
(16.16 fixed-point spans) and ``pygame.draw.polygon`` (float32 spans), with the C code's
integer arithmetic and rounding; see the package docstring for the sources and why rows.
Spans of every polygon are computed edge by edge for all rows at once
(:func:`_gfx_span_table`); a row visits only the polygons whose vertex rows include it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from envs.car_racing_raster.rows import _blend, _fill, _i16, _i32, _inline, _kernel, _row, _set, _u


# SDL_gfx _clipEncode bits.
_LEFT, _RIGHT, _BOTTOM, _TOP = 1, 2, 4, 8


# Edge kinds of an SDL_gfx anti-aliased line after clipping (see _aaline_record).
_SKIP, _VLINE, _HLINE, _WU_Y, _WU_X, _WU_DIAG = 0, 1, 2, 3, 4, 5


_RECORD = 10  # int64 fields per edge record


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
def _aaline_row(records, j, row, color, px, lo, hi):
    """Paint row ``row`` of the anti-aliased line ``records[j]`` (see _aaline_record)
    on the pixel row ``px``.

    The polygon's fill paints ``lo..hi`` (its first span on this row) next, so the
    blended pixels there are skipped (a y-major line's pair, an x-major line's steps
    in that stretch): two compares against a blend, 0.95-0.96x a frame. Solid pixels
    are written anyway.
    """
    j = _u(j)
    if row < records[j, 8] or row > records[j, 9]:
        return
    kind = records[j, 0]
    if kind == _VLINE:
        _set(px, records[j, 1], color)
        return
    if kind == _HLINE:
        _fill(px, records[j, 2], records[j, 3], color)
        return
    if row == records[j, 2]:  # first pixel, solid
        _set(px, records[j, 1], color)
    x0, y0, last = records[j, 3], records[j, 4], records[j, 5]
    xdir, erradj = records[j, 6], records[j, 7]
    if kind == _WU_Y:  # one step per row: a pixel and its neighbour in x
        n = row - y0
        if 1 <= n <= last:
            acc = n * erradj
            wgt = (acc >> 24) & 255
            x = x0 + xdir * (acc >> 32)
            if x < lo or x > hi:
                _blend(px, x, color, (255 * (255 - wgt)) >> 8)
            if x + xdir < lo or x + xdir > hi:
                _blend(px, x + xdir, color, (255 * wgt) >> 8)
    elif kind == _WU_DIAG:  # the paired pixel gets weight 0: no change
        n = row - y0
        if 1 <= n <= last:
            _blend(px, x0 + xdir * n, color, (255 * 255) >> 8)
    else:  # x-major: the steps whose y (or y + 1, the paired pixel) is `row`
        # Steps n of block b have y = y0 + b: those with b = row - y0 put
        # their own pixel on this row, those with b = row - y0 - 1 their
        # paired one; each block is a run of consecutive steps, at distinct x.
        m = row - y0
        paired_first, paired_stop = _wu_block(m - 1, erradj, last)
        own_first, own_stop = _wu_block(m, erradj, last)
        first = paired_first if paired_first <= paired_stop else own_first
        stop = own_stop if own_first <= own_stop else paired_stop
        # The steps whose pixel lies inside lo..hi are left to the fill.
        inside_first, inside_stop = (lo - x0, hi - x0) if xdir > 0 else (x0 - hi, x0 - lo)
        for n in range(first, min(stop, inside_first - 1) + 1):
            _blend_step(px, x0, xdir, n, paired_stop, erradj, color)
        for n in range(max(first, inside_stop + 1), stop + 1):
            _blend_step(px, x0, xdir, n, paired_stop, erradj, color)


@_inline
def _blend_step(px, x0, xdir, n, paired_stop, erradj, color):
    """Step ``n`` of an x-major Wu line on this row: its own pixel (weight ``255 - wgt``),
    or for steps up to ``paired_stop`` the previous row's step's paired pixel (``wgt``)."""
    wgt = ((n * erradj) >> 24) & 255
    alpha = (255 * wgt) >> 8 if n <= paired_stop else (255 * (255 - wgt)) >> 8
    _blend(px, x0 + xdir * n, color, alpha)


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
                at = _u(k)  # unsigned indices (see _u)
                ends[at, _u(count[at])] = _i32(_i32(_i32(quotient) * (x2 - x1)) + _i32(65536 * x1))
                count[at] += 1
                k += 1
                quotient += grow
                remainder += grow_remainder
                if remainder >= dy:
                    remainder -= dy
                    quotient += 1
        # The usual row, crossed by two edges, is indexed in place: a row view (`ends[k]`)
        # per row, its reference count updated atomically, took a third of the table's time.
        for k in range(first[i], first[i] + hi - lo + 1):
            at = _u(k)
            n = count[at]
            if n == 2:
                ends[at, 0], ends[at, 1] = _hline_ends(ends[at, 0], ends[at, 1])
                count[at] = 1
                continue
            ints = ends[k]
            _sort_small(ints, n)
            for j in range(0, n - 1, 2):
                ints[j], ints[j + 1] = _hline_ends(ints[j], ints[j + 1])
            count[k] = n // 2
    return first, count, ends


@_inline
def _hline_ends(a, b):
    """The span ``hlineColor`` draws between two 16.16 intersections (either order):
    the pixels rounded inwards, ends ordered (hlineColor swaps them)."""
    xa = _i32(min(a, b) + 1)
    xa = _i16((xa >> 16) + ((xa & 32768) >> 15))
    xb = _i32(max(a, b) - 1)
    xb = _i16((xb >> 16) + ((xb & 32768) >> 15))
    return min(xa, xb), max(xa, xb)


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
        # Element by element: slices would be views, each reference-counted atomically.
        a, b = start[i], start[i + 1]
        min_x = max_x = vx[a]
        min_y = max_y = vy[a]
        for j in range(a + 1, b):
            min_x, max_x = min(min_x, vx[j]), max(max_x, vx[j])
            min_y, max_y = min(min_y, vy[j]), max(max_y, vy[j])
        bounds[0, i], bounds[1, i], bounds[2, i], bounds[3, i] = min_x, max_x, min_y, max_y
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
    # How many polygons each row has, as +1 at a polygon's first row and -1 past its last
    # (element by element: slices would be views, each reference-counted atomically).
    starts = np.zeros(height + 1, np.int64)
    for i in range(count):
        lo, hi = max(bounds[2, i], 0), min(bounds[3, i], height - 1)
        if lo <= hi:
            starts[lo] += 1
            starts[hi + 1] -= 1
    offsets = np.zeros(height + 1, np.int64)
    running = 0
    for r in range(height):
        running += starts[r]
        offsets[r + 1] = offsets[r] + running
    polygons = np.empty(offsets[height], np.int64)
    fill = offsets[:-1].copy()
    for i in range(count):
        for r in range(max(bounds[2, i], 0), min(bounds[3, i], height - 1) + 1):
            polygons[fill[r]] = i
            fill[r] += 1
    return offsets, polygons


@_row
def _paint_gfx_row(row, gfx, px, background):
    """Canvas row ``row`` on the pixel row ``px``, cleared to ``background``, then
    each SDL_gfx polygon of the row (see _rows_to_polygons): ``aapolygon``, then
    ``filled_polygon``.

    Starts instead at the last polygon whose fill covers the whole row (the
    background square, mostly): everything painted before it is hidden.
    ``gfx`` is what _gfx_polygons prepares.
    """
    vx, vy, start, color, records, bounds, offsets, polygons, spans = gfx
    first_row, count, ends = spans
    width = px.shape[0]
    first, last = offsets[row], offsets[row + 1]
    fill = background
    for n in range(last - 1, first - 1, -1):
        i = _u(polygons[_u(n)])  # unsigned, as every index here (see _u)
        if bounds[0, i] > 0 or bounds[1, i] < width - 1:
            continue
        k = _u(first_row[i] + row - max(bounds[2, i], 0))
        if _spans_cover_row(ends[k], count[k], width):
            fill = color[i]
            first = n + 1
            break
    _fill(px, 0, width - 1, fill)
    for n in range(first, last):
        i = _u(polygons[_u(n)])
        k = _u(first_row[i] + row - max(bounds[2, i], 0))
        row_spans, row_count = ends[k], count[k]
        lo, hi = (row_spans[0], row_spans[1]) if row_count > 0 else (1, 0)  # see _aaline_row
        for j in range(start[i], start[i + np.uint64(1)]):
            _aaline_row(records, j, row, color[i], px, lo, hi)
        for s in range(row_count):
            _fill(px, row_spans[2 * s], row_spans[2 * s + 1], color[i])


@_inline
def _draw_row_spans(row, vx, vy, start, color, bounds, first, ints, spans):
    """The spans each ``pygame.draw.polygon`` from ``first`` on paints on ``row``, in
    painting order, into ``spans``: span ``s`` is ``spans[3s]..spans[3s + 1]`` (ordered,
    unclipped) in colour ``spans[3s + 2]``. Returns how many. ``spans`` needs room for
    ``5 * vx.shape[0]`` values (at most 3 / 2 spans a vertex, see _draw_spans)."""
    n = 0
    for i in range(first, start.shape[0] - 1):
        if row < bounds[2, i] or row > bounds[3, i]:
            continue
        count = _draw_spans(vx, vy, start[i], start[i + 1], bounds[2, i], bounds[3, i], row, ints)
        for s in range(count):
            x1, x2 = ints[2 * s], ints[2 * s + 1]
            spans[3 * n], spans[3 * n + 1], spans[3 * n + 2] = min(x1, x2), max(x1, x2), color[i]
            n += 1
    return n


@_inline
def _paint_spans(spans, n, px):
    """Paint the ``n`` spans of _draw_row_spans in turn (``drawhorzlineclipbounding``: clipped)."""
    for s in range(n):
        _fill(px, spans[3 * s], spans[3 * s + 1], spans[3 * s + 2])


@_row
def _paint_draw_row(row, vx, vy, start, color, bounds, first, ints, spans, px):
    """Canvas row ``row`` of each ``pygame.draw.polygon`` from ``first`` on, in turn
    (``spans``: room for _draw_row_spans)."""
    _paint_spans(spans, _draw_row_spans(row, vx, vy, start, color, bounds, first, ints, spans), px)


@_row
def _last_draw_cover(row, vx, vy, start, bounds, ints, width):
    """The last ``pygame.draw.polygon`` whose fill covers all of ``row``, or -1."""
    for i in range(start.shape[0] - 2, -1, -1):
        if bounds[0, i] > 0 or bounds[1, i] < width - 1 or row < bounds[2, i] or row > bounds[3, i]:
            continue
        spans = _draw_spans(vx, vy, start[i], start[i + 1], bounds[2, i], bounds[3, i], row, ints)
        if _spans_cover_row(ints, spans, width):
            return i
    return -1


@njit(cache=True)
def _row_span(bounds):
    """(2,) the rows from the lowest to the highest vertex of all polygons
    (empty, lo > hi, for none): rows outside have nothing to paint."""
    span = np.array([1, 0], np.int64)
    if bounds.shape[1]:
        span[0], span[1] = bounds[2].min(), bounds[3].max()
    return span


@njit(cache=True)
def _gfx_polygons(vx, vy, start, color, width, height):
    """SDL_gfx polygons as the row painters take them: (Sint16 vertices x, y, start,
    colours, edge records, vertex-row bounds, the row -> polygons index and the span table)."""
    ivx, ivy = _gfx_ints(vx), _gfx_ints(vy)
    bounds = _vertex_bounds(ivx, ivy, start)
    offsets, polygons = _rows_to_polygons(bounds, height)
    return (ivx, ivy, start, color, _gfx_records(ivx, ivy, start, width, height), bounds,
            offsets, polygons, _gfx_span_table(ivx, ivy, start, bounds, height))


@njit(cache=True)
def _draw_polygons(vx, vy, start, color):
    """``pygame.draw.polygon`` polygons as the row painters take them: (int vertices
    x, y, start, colours, vertex-row bounds, their row span)."""
    ivx, ivy = _draw_ints(vx), _draw_ints(vy)
    bounds = _vertex_bounds(ivx, ivy, start)
    return ivx, ivy, start, color, bounds, _row_span(bounds)
