"""The whole state frame: paint every flipped canvas row (scene, HUD, score) and shrink it.

:func:`render_state_frame` is what ``FastCarRacing`` calls per step; :func:`paint_canvas`
and :func:`smoothscale_canvas` expose the painting and the shrink apart, for the tests
against pygame.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from envs.car_racing_raster.runs import (
    _clear,
    _fill,
    _kernel,
    _move_runs,
    _pack,
    _packed_colors,
    _row,
    _run_at,
    _unpack,
)
from envs.car_racing_raster.polygons import (
    _draw_polygons,
    _gfx_polygons,
    _last_draw_cover,
    _paint_draw_row,
    _paint_gfx_row,
)
from envs.car_racing_raster.shrink import _colour_tables, _shrink_row, _shrink_state


@_row
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
def _palette(gcolor, dcolor, hcolor, background):
    """The frame's distinct 0xRRGGBB colours (the scene's ``background``
    included) and the index among them of each polygon's colour and of it."""
    distinct = np.unique(np.concatenate((gcolor, dcolor, hcolor, np.full(1, background, np.int64))))
    return (distinct, np.searchsorted(distinct, gcolor), np.searchsorted(distinct, dcolor),
            np.searchsorted(distinct, hcolor), np.searchsorted(distinct, background))


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
    first = np.int64(0)  # typed as the HUD's cover + 1: one compiled _paint_draw_row serves both
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
                    row, dvx, dvy, dstart, dcolor, dpalette, dbounds, first, ints, runs, meta
                )
        if hrows[0] <= out_row <= hrows[1]:
            _paint_draw_row(
                out_row, hvx, hvy, hstart, hcolor, hpalette, hbounds, cover + 1, ints, runs, meta
            )
        _blit_row(out_row, text_pixels, text_x, text_y, runs, meta)
        _shrink_row(runs, meta, seen, seen_count, out_row, xplan, tables, window_at, line, acc,
                    since, yplan, output_of, frame)


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
    # Arguments typed as the frame kernel's, so the row functions compiled for it serve here.
    no_palette, first = np.int64(-1), np.int64(0)
    for row in range(height):
        _paint_gfx_row(row, gfx, runs, meta, scratch, _pack(background), no_palette)
        _paint_draw_row(row, dvx_, dvy_, dstart_, dpacked, dpalette, dbounds, first, ints, runs, meta)
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
