"""FastCarRacing's state frame from the env's state in one compiled call.

Per step, :class:`envs.fast_car_racing.FastCarRacing` hands this module the road (grass and
road polygons in world units, their colours), the view, the car's bodies (their Box2D
transforms and the wheels' phases), the indicator panel's inputs and the score text's
pixels; :func:`state_frame` culls the road (:func:`_cull`), places the car and the panel
(:mod:`envs.car_racing_scene`) and rasterises the frame (:mod:`envs.car_racing_raster`)
without coming back to Python. The preparation used to be three compiled calls from Python
whose ~13 result arrays were boxed into NumPy arrays only to be unboxed again by the
raster's call: one call is 0.92-0.99x a FastCarRacing step (median 0.97; paired, random
driving).

:func:`raster_arguments` gives what the raster is called with, for the benchmarks that time
the raster alone on recorded frames.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium.envs.box2d import car_racing as _reference
from numba import njit

from envs.box2d_memory import body_transforms
from envs.car_racing_raster import render_state_frame
from envs.car_racing_scene import car_polygons, hud_polygons, place, placed

__all__ = ["raster_arguments", "state_frame"]

STATE_W = _reference.STATE_W
STATE_H = _reference.STATE_H
WINDOW_W = _reference.WINDOW_W
WINDOW_H = _reference.WINDOW_H
PLAYFIELD = _reference.PLAYFIELD
GRASS_DIM = _reference.GRASS_DIM
MAX_SHAPE_DIM = _reference.MAX_SHAPE_DIM

# Culling margin in pixels. gfxdraw converts float vertices to ints (moving
# them by < 1 px) and anti-aliased edges touch at most one pixel beside the
# integer line, so a polygon whose float bounding box lies more than 3 px
# outside the kept area cannot change a kept pixel.
_CULL_MARGIN = 3.0
# After the vertical flip, _render_indicators paints rows
# [WINDOW_H - 5 * WINDOW_H / 40, WINDOW_H) black across the full width, which
# are rows [0, 5 * WINDOW_H / 40) of the unflipped canvas: whatever the road
# drawing leaves there is overwritten, so polygons entirely inside are skipped.
_PANEL_ROWS = int(5 * WINDOW_H / 40.0)
# The background square is replaced by a fill only if it contains the canvas
# with this much room (px) to spare, so its anti-aliased outline is off-canvas.
_FILL_MARGIN = 4.0
# Distance in pixels from the car's pixel (W/2, H/4) beyond which nothing is
# kept: the farthest canvas corner, plus the culling/fill margins, rounded up.
_REACH_PX = math.ceil(
    math.hypot(max(WINDOW_W / 2, WINDOW_W / 2), max(WINDOW_H / 4, 3 * WINDOW_H / 4))
    + 2 * max(_CULL_MARGIN, _FILL_MARGIN)
)


def _grass_polygons() -> list[list[tuple[float, float]]]:
    """The reference's grass patches, built with the very same expressions."""
    grass = []
    for x in range(-20, 20, 2):
        for y in range(-20, 20, 2):
            grass.append(
                [
                    (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + 0),
                    (GRASS_DIM * x + 0, GRASS_DIM * y + 0),
                    (GRASS_DIM * x + 0, GRASS_DIM * y + GRASS_DIM),
                    (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + GRASS_DIM),
                ]
            )
    return grass


@njit(cache=True)
def _pack_road_colors(background, grass, grass_drawn, road_rgb):
    """``[background, grass x grass_drawn, road tiles...]`` as 0xRRGGBB int64, the road
    tiles' float colours ``road_rgb`` (R, 3) truncated as ``int(c)`` does; empty if a
    truncated channel falls outside 0..255 (or is NaN), which the raster does not reproduce."""
    colors = np.empty(1 + grass_drawn + road_rgb.shape[0], np.int64)
    colors[0] = background
    colors[1: 1 + grass_drawn] = grass
    for k in range(road_rgb.shape[0]):
        packed = 0
        for c in range(3):
            v = road_rgb[k, c]
            if not (-1.0 < v < 256.0):  # int() truncates towards zero: -0.5 is 0
                return colors[:0]
            packed = (packed << 8) | int(v)
        colors[1 + grass_drawn + k] = packed
    return colors


_GRASS = np.array(_grass_polygons(), dtype=np.float64)  # (400, 4, 2)
_FIELD = np.array(
    [
        (PLAYFIELD, PLAYFIELD),
        (PLAYFIELD, -PLAYFIELD),
        (-PLAYFIELD, -PLAYFIELD),
        (-PLAYFIELD, PLAYFIELD),
    ],
    dtype=np.float64,
)
_N_GRASS = _GRASS.shape[0]


@njit(inline="always")
def _box_reaches_kept_area(min_x, max_x, min_y, max_y):
    """Whether the pixel box [min_x, max_x] x [min_y, max_y] comes within _CULL_MARGIN of the
    pixels kept in the observation (the canvas less the rows the panel paints over)."""
    return (max_x >= -_CULL_MARGIN and min_x <= WINDOW_W - 1 + _CULL_MARGIN
            and max_y >= _PANEL_ROWS - _CULL_MARGIN and min_y <= WINDOW_H - 1 + _CULL_MARGIN)


@njit(cache=True)
def _cull(poly_x, poly_y, centre_x, centre_y, radius, rotation, zoom, translation):
    """The polygons the reference draws that can change a kept pixel.

    ``poly_x``/``poly_y`` (P, 4) world vertices, their bounding circles
    ``centre_x``, ``centre_y``, ``radius`` (P,) (world units).
    Returns ``(indices (K,), px (K, 4), py (K, 4))``, indices ascending
    (the drawing order) and pixel vertices bit-identical to the reference's.
    """
    count = poly_x.shape[0]
    keep = np.empty(count, np.int64)
    px = np.empty((count, 4), np.float64)
    py = np.empty((count, 4), np.float64)
    kept = 0
    for i in range(count):
        # The polygon's pixels lie within radius * zoom of its centre's pixel (the
        # view is a rotation and a zoom; 1 px covers rounding): if that square
        # misses the kept area, so does every vertex box below. Half the track
        # lies within the reach of the car, ~5% within the view: placing one
        # centre instead of four vertices for the rest is most of the cull's time.
        cx, cy = placed(centre_x[i], centre_y[i], rotation, zoom, translation)
        r = radius[i] * zoom + 1.0
        if not _box_reaches_kept_area(cx - r, cx + r, cy - r, cy + r):
            continue
        # The reference draws a polygon if any vertex is inside the canvas
        # grown by MAX_SHAPE_DIM; we draw the subset whose box also reaches
        # the kept pixels, which yields identical pixels. (Element by element:
        # row views would update reference counts atomically, four a polygon.)
        inside = False
        min_x = min_y = np.inf
        max_x = max_y = -np.inf
        for v in range(4):
            x, y = placed(poly_x[i, v], poly_y[i, v], rotation, zoom, translation)
            px[kept, v], py[kept, v] = x, y
            if -MAX_SHAPE_DIM <= x <= WINDOW_W + MAX_SHAPE_DIM and (
                -MAX_SHAPE_DIM <= y <= WINDOW_H + MAX_SHAPE_DIM
            ):
                inside = True
            min_x, max_x, min_y, max_y = min(min_x, x), max(max_x, x), min(min_y, y), max(max_y, y)
        if inside and _box_reaches_kept_area(min_x, max_x, min_y, max_y):
            keep[kept] = i
            kept += 1
    return keep[:kept], px[:kept], py[:kept]


@njit(cache=True)
def _gfx_scene(poly_x, poly_y, centre_x, centre_y, radius, road_rgb, field_pixel, grass, draw_field,
               rotation, zoom, translation):
    """What the reference draws with gfxdraw, as :func:`envs.car_racing_raster.render_state_frame` takes it.

    One compiled call for the cull (:func:`_cull`), the colours (:func:`_pack_road_colors`)
    and the flat vertex arrays: from Python these were two compiled calls and about ten NumPy
    calls a frame. Takes the grass and road polygons as ``_polygon_arrays`` gives them, the
    road colours ``road_rgb`` (R, 3) float64, the field's and the grass's 0xRRGGBB pixels,
    and ``draw_field``: whether the background square is drawn first (else the canvas
    starts in its colour). Returns ``(ok, x, y, start, colors)``: the polygons' vertices in
    drawing order (float64, the reference's), polygon ``i`` at ``start[i]:start[i + 1]``,
    its 0xRRGGBB colour ``colors[i]``; ``ok`` is False if a road colour is not a pixel the
    raster reproduces.
    """
    drawn, px, py = _cull(poly_x, poly_y, centre_x, centre_y, radius, rotation, zoom, translation)
    first_road = np.searchsorted(drawn, _N_GRASS)  # drawn is ascending: grass first
    colors = _pack_road_colors(field_pixel, grass, first_road, road_rgb[drawn[first_road:] - _N_GRASS])
    ok = colors.shape[0] > 0
    n_field = 4 if draw_field else 0
    x = np.empty(n_field + px.size)
    y = np.empty(n_field + py.size)
    if draw_field:
        place(_FIELD[:, 0], _FIELD[:, 1], rotation, zoom, translation, x[:4], y[:4])
    else:
        colors = colors[1:]
    x[n_field:] = px.ravel()
    y[n_field:] = py.ravel()
    return ok, x, y, np.arange(0, x.shape[0] + 1, 4), colors

@njit(cache=True)
def raster_arguments(road, road_rgb, field_pixel, grass, background, rotation, zoom, translation,
                     car, addresses, transforms, phases, hud, text, text_x, text_y):
    """``(ok, arguments)``: the arguments of :func:`envs.car_racing_raster.render_state_frame`
    for this state (see :func:`state_frame`); ``ok`` False if a road colour is not a pixel
    the raster reproduces."""
    poly_x, poly_y, centre_x, centre_y, radius = road
    draw_field = background < 0
    ok, gx, gy, gstart, gcolor = _gfx_scene(poly_x, poly_y, centre_x, centre_y, radius, road_rgb,
                                            field_pixel, grass, draw_field, rotation, zoom, translation)
    local, start, body, wheel, color = car
    if addresses.shape[0] > 0:
        body_transforms(addresses, transforms)
    cx, cy, cstart, ccolor = car_polygons(local, start, body, wheel, color, transforms, phases,
                                          rotation, zoom, translation)
    velocity_x, velocity_y, omegas, joint_angle, angular_velocity = hud
    hx, hy, hstart, hcolor = hud_polygons(WINDOW_W, WINDOW_H, velocity_x, velocity_y, omegas,
                                          joint_angle, angular_velocity)
    return ok, (gx, gy, gstart, gcolor, cx, cy, cstart, ccolor, hx, hy, hstart, hcolor,
                text, text_x, text_y, WINDOW_W, WINDOW_H, STATE_W, STATE_H,
                np.int64(0) if draw_field else np.int64(background))


@njit(cache=True)
def state_frame(road, road_rgb, field_pixel, grass, background, rotation, zoom, translation,
                car, addresses, transforms, phases, hud, text, text_x, text_y):
    """The state observation, ``(ok, frame (STATE_H, STATE_W, 3) uint8)``, ``ok`` False (and
    the frame empty) if a road colour is not a pixel the raster reproduces.

    ``road``: ``(poly_x, poly_y, centre_x, centre_y, radius)`` grass then road polygons in
    world units, (P, 4) and (P,) float64 (see ``FastCarRacing._polygon_arrays``);
    ``road_rgb`` (R, 3) float64 the road tiles' colours; ``field_pixel``, ``grass`` the
    background square's and grass's 0xRRGGBB pixels; ``background`` the pixel the canvas
    starts in when the square covers it, or -1 to draw the square on a zeroed canvas as the
    reference does. ``rotation, zoom, translation``: the view (see
    :func:`envs.car_racing_scene.place`). ``car``: ``(local, start, body, wheel, color)``
    and ``transforms``, ``phases`` as :func:`envs.car_racing_scene.car_polygons` takes them;
    ``hud``: ``(velocity_x, velocity_y, omegas (4,), joint_angle, angular_velocity)`` as
    :func:`envs.car_racing_scene.hud_polygons` takes them; ``text`` (h, w) 0xRRGGBB the
    score's pixels, blitted at ``(text_x, text_y)``.
    """
    ok, a = raster_arguments(road, road_rgb, field_pixel, grass, background, rotation, zoom,
                             translation, car, addresses, transforms, phases, hud, text, text_x,
                             text_y)
    if not ok:
        return False, np.empty((0, 0, 3), np.uint8)
    return True, render_state_frame(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9],
                                     a[10], a[11], a[12], a[13], a[14], a[15], a[16], a[17],
                                     a[18], a[19])
