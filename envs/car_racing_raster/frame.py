"""The whole state frame: paint every flipped canvas row (scene, HUD, score) and shrink it.

:func:`render_state_frame` is what ``FastCarRacing`` calls per step; :func:`paint_canvas`
and :func:`smoothscale_canvas` expose the painting and the shrink apart, for the tests
against pygame.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from envs.car_racing_raster.rows import _fill, _inline, _kernel, _row
from envs.car_racing_raster.polygons import (
    _draw_polygons,
    _draw_row_spans,
    _gfx_polygons,
    _last_draw_cover,
    _paint_draw_row,
    _paint_gfx_row,
    _paint_spans,
)
from envs.car_racing_raster.shrink import _shrink_row, _shrink_state, _shrink_y_row


@_row
def _blit_row(row, text, text_x, text_y, px):
    """Row ``row`` of an opaque blit of ``text`` (h, w) 0xRRGGBB at (text_x, text_y).

    A loop over views indexed from 0 (free here: no runtime, no reference counts), which
    LLVM vectorises; indexed by canvas column it stayed scalar (Numba's wrap-around of
    negative indices): the score's 46 rows took 4.2 us a frame that way, 0.25 us now.
    """
    ty = row - text_y
    lo, hi = max(text_x, 0), min(text_x + text.shape[1], px.shape[0])
    if ty < 0 or ty >= text.shape[0] or lo >= hi:
        return
    dst = px[lo:hi]
    src = text[ty, lo - text_x : hi - text_x]
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@_inline
def _same_spans(spans, last, n):
    """Whether the first ``n`` spans (3 values each) of ``spans`` and ``last`` are equal."""
    for i in range(3 * n):
        if spans[i] != last[i]:
            return False
    return True


@_kernel
def _paint_frame_rows(gfx, scene, hud, text, ints, rows, spans, shrink):
    """Paint every row of the flipped frame and shrink it, in X into ``line``, then in Y
    into the frame (see render_state_frame; the tuples hold its arguments, prepared, and
    the shrink state of _shrink_state). ``rows`` (2, width) int32: rows are painted into
    ``rows[0]`` and ``rows[1]`` in turn, so the row before stays for the shrink to compare
    with. ``spans`` (3, L) int64: the spans of the draw polygons of a row (see
    _draw_row_spans), the HUD's of this row and of the last painted one.

    A panel row that paints the very spans the last painted row did and no score text is
    the same row again (the bars are rectangles: 50 of the panel's 100 rows on recorded
    frames): it is neither painted nor compared, only the Y filter counts it, which saves
    its clear and its compare (~100 ns a row)."""
    xplan, window_at, yplan, output_of, (wholes, dirty, line, acc, since, frame) = shrink
    dvx, dvy, dstart, dcolor, dbounds, drows = scene
    hvx, hvy, hstart, hcolor, hbounds, hrows = hud
    text_pixels, text_x, text_y, background = text
    height, width = output_of.shape[0], rows.shape[1]
    first = np.int64(0)  # typed as paint_canvas's: one compiled _paint_draw_row serves both
    cur = 0  # rows[cur] takes the next painted row, rows[cur ^ 1] holds the last one
    hud_now = 1  # spans[hud_now] takes this row's HUD spans, spans[3 - hud_now] the last painted row's
    last_cover, last_n = -1, -1  # the last painted row's panel (-1: none, or the score's row) and HUD spans
    for out_row in range(height):
        px, prev = rows[cur], rows[cur ^ 1]
        # A HUD polygon covering the whole row (the panel) hides the scene.
        cover, n, repeatable = -1, 0, False
        in_hud = hrows[0] <= out_row <= hrows[1]
        if in_hud:
            cover = _last_draw_cover(out_row, hvx, hvy, hstart, hbounds, ints, width)
            n = _draw_row_spans(out_row, hvx, hvy, hstart, hcolor, hbounds, cover + 1, ints, spans[hud_now])
            # The score text's rows differ from one another: never taken as repeats.
            repeatable = cover >= 0 and not (text_y <= out_row < text_y + text_pixels.shape[0])
            if (repeatable and cover == last_cover and n == last_n
                    and _same_spans(spans[hud_now], spans[3 - hud_now], n)):
                _shrink_y_row(line, out_row, yplan, output_of, acc, since, frame)
                continue
        if cover >= 0:
            _fill(px, 0, width - 1, hcolor[cover])
        else:
            row = height - 1 - out_row  # the vertical flip
            _paint_gfx_row(row, gfx, px, background)
            if drows[0] <= row <= drows[1]:
                _paint_draw_row(row, dvx, dvy, dstart, dcolor, dbounds, first, ints, spans[0], px)
        if in_hud:
            _paint_spans(spans[hud_now], n, px)
            hud_now = 3 - hud_now
        last_cover, last_n = (cover, n) if repeatable else (-1, -1)
        _blit_row(out_row, text_pixels, text_x, text_y, px)
        _shrink_row(px, prev, out_row == 0, out_row, xplan, window_at, wholes, dirty, line, acc, since,
                    yplan, output_of, frame)
        cur ^= 1


@njit(cache=True)
def _buffers(width, polygon_vertices):
    """Two pixel rows (2, width) int32 (see _paint_frame_rows), the intersection buffer of the
    ``pygame.draw.polygon`` code and three rows of its spans (see _draw_row_spans)."""
    vertices = max(polygon_vertices, 4)
    return (np.zeros((2, width), np.int32), np.empty(3 * vertices, np.int64),
            np.empty((3, 5 * vertices), np.int64))


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
    float64 (see the package docstring), colours 0xRRGGBB int64; the canvas
    is ``width`` x ``height``. Returns (out_h, out_w, 3) uint8 RGB, as
    ``_create_image_array`` does.
    """
    gfx = _gfx_polygons(gvx, gvy, gstart, gcolor, width, height)
    scene = _draw_polygons(dvx, dvy, dstart, dcolor)
    hud = _draw_polygons(hvx, hvy, hstart, hcolor)
    text32 = text.astype(np.int32)
    shrink = _shrink_state(width, out_w, height, out_h)
    rows, ints, spans = _buffers(width, max(gvx.shape[0], dvx.shape[0], hvx.shape[0]))
    text_args = (text32, text_x, text_y, np.int64(background))
    _paint_frame_rows(gfx, scene, hud, text_args, ints, rows, spans, shrink)
    return shrink[4][-1].reshape((out_h, out_w, 3))  # the frame buffer (see _shrink_state)


@njit(cache=True)
def paint_canvas(gvx, gvy, gstart, gcolor, dvx, dvy, dstart, dcolor, width, height, background):
    """The unflipped (height, width) 0xRRGGBB canvas the scene primitives of
    :func:`render_state_frame` paint on a Surface filled with ``background``
    (for tests against pygame): the same row painting, each row copied out."""
    gfx = _gfx_polygons(gvx, gvy, gstart, gcolor, width, height)
    dvx_, dvy_, dstart_, dcol, dbounds, drows = _draw_polygons(dvx, dvy, dstart, dcolor)
    rows, ints, spans = _buffers(width, max(gvx.shape[0], dvx.shape[0]))
    canvas = np.empty((height, width), np.uint32)
    # Arguments typed as the frame kernel's, so the row functions compiled for it serve here.
    first, px = np.int64(0), rows[0]
    for row in range(height):
        _paint_gfx_row(row, gfx, px, np.int64(background))
        _paint_draw_row(row, dvx_, dvy_, dstart_, dcol, dbounds, first, ints, spans[0], px)
        canvas[row] = px
    return canvas


@njit(cache=True)
def smoothscale_canvas(canvas, out_w, out_h):
    """``pygame.transform.smoothscale`` (SSE2 shrink) of a (H, W) 0xRRGGBB canvas,
    through the same row shrinking as :func:`render_state_frame`."""
    height, width = canvas.shape
    xplan, window_at, yplan, output_of, (wholes, dirty, line, acc, since, frame) = _shrink_state(
        width, out_w, height, out_h)
    rows = np.zeros((2, width), np.int32)
    for y in range(height):
        px, prev = rows[y & 1], rows[(y & 1) ^ 1]
        px[:] = canvas[y]
        _shrink_row(px, prev, y == 0, y, xplan, window_at, wholes, dirty, line, acc, since,
                    yplan, output_of, frame)
    return frame.reshape((out_h, out_w, 3))
