"""The geometry CarRacing hands to pygame each frame, computed in compiled code.

:mod:`envs.fast_car_racing` draws the frames of Gymnasium's ``CarRacing``
without pygame; what it draws must be the very floats the reference computes
in Python, one vertex at a time, every frame. This module holds those
computations, compiled:

* :func:`place`: ``pygame.math.Vector2(c).rotate_rad(angle) * zoom +
  translation`` for many vertices (with :func:`rotation` replicating pygame's
  set-up of the angle; :func:`placed` for one vertex inside other compiled code,
  :func:`to_pixels` for arrays from Python);
* :func:`car_polygons`: ``Car.draw``'s polygons (the car's fixtures through
  Box2D's float32 ``transform * vertex``, and each wheel's white stripe), in
  pixels;
* :func:`hud_polygons`: ``CarRacing._render_indicators``' panel and bars.

Each reproduces the reference's expressions operation by operation, compiled
without fast-math, so every sum and product rounds as in CPython, pygame's C
and Box2D (float32); ``tests/test_fast_car_racing.py`` compares the frames
bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium.envs.box2d.car_dynamics import SIZE, WHEEL_R, WHEEL_W, WHEEL_WHITE
from numba import njit

__all__ = ["car_polygons", "hud_polygons", "place", "placed", "rotation", "to_pixels"]

# pygame's math module: VECTOR_EPSILON and the constants of _vector2_rotate_helper.
_VECTOR_EPSILON = 1e-6
_TWO_PI = 2.0 * math.pi
_HALF_PI = math.pi / 2.0

_WHITE = (WHEEL_WHITE[0] << 16) | (WHEEL_WHITE[1] << 8) | WHEEL_WHITE[2]
# _render_indicators' colours as 0xRRGGBB: panel, speed, ABS x4, steering, gyro.
_HUD_COLORS = (0x000000, 0xFFFFFF, 0x0000FF, 0x0000FF, 0x3300FF, 0x3300FF, 0x00FF00, 0xFF0000)


def rotation(angle: float) -> tuple[bool, int, float, float]:
    """Replicate the set-up of pygame's ``_vector2_rotate_helper`` for ``angle``.

    Returns ``(special, quadrant, cos, sin)``. pygame reduces the angle with
    C ``fmod`` and, within ``VECTOR_EPSILON`` of a multiple of 90 degrees,
    swaps/negates coordinates instead of multiplying; otherwise it computes
    ``x' = cos*x - sin*y`` and ``y' = sin*x + cos*y`` with libm ``sin``/``cos``.
    Python's ``math.fmod/sin/cos`` call the same libm functions, and there is
    one angle per frame, so only the per-vertex products need compiling.
    """
    angle = math.fmod(angle, _TWO_PI)
    if angle < 0:
        angle += _TWO_PI
    if math.fmod(angle + _VECTOR_EPSILON, _HALF_PI) < 2 * _VECTOR_EPSILON:
        return True, int((angle + _VECTOR_EPSILON) / _HALF_PI), 1.0, 0.0
    return False, 0, math.cos(angle), math.sin(angle)


@njit(cache=True)
def place(x, y, rotation, zoom, translation, px, py):
    """``px, py = rotate(x, y) * zoom + translation`` element-wise (1-D arrays).

    Compiled without fast-math, so every product and sum is one IEEE double
    operation, as in pygame's C and the reference's Python.
    """
    for i in range(x.shape[0]):
        px[i], py[i] = placed(x[i], y[i], rotation, zoom, translation)


@njit(inline="always")
def placed(x, y, rotation, zoom, translation):
    """One vertex of :func:`place`: ``(px, py)``."""
    special, quadrant, cos_a, sin_a = rotation
    if special:
        if quadrant == 0 or quadrant == 4:
            rx, ry = x, y
        elif quadrant == 1:
            rx, ry = -y, x
        elif quadrant == 2:
            rx, ry = -x, -y
        else:
            rx, ry = y, -x
    else:
        rx = cos_a * x - sin_a * y
        ry = sin_a * x + cos_a * y
    return rx * zoom + translation[0], ry * zoom + translation[1]


@njit(cache=True)
def _white_stripe(phase):
    """A wheel's white stripe in its body's frame, float32 (4, 2) as Box2D
    stores ``Car.draw``'s Python floats, or None when the reference skips it."""
    s1 = math.sin(phase)
    s2 = math.sin(phase + 1.2)
    c1 = math.cos(phase)
    c2 = math.cos(phase + 1.2)
    if s1 > 0 and s2 > 0:
        return False, np.zeros((4, 2), np.float32)
    if s1 > 0:
        c1 = float(np.sign(c1))
    if s2 > 0:
        c2 = float(np.sign(c2))
    stripe = np.empty((4, 2), np.float32)
    stripe[0, 0], stripe[0, 1] = -WHEEL_W * SIZE, +WHEEL_R * c1 * SIZE
    stripe[1, 0], stripe[1, 1] = +WHEEL_W * SIZE, +WHEEL_R * c1 * SIZE
    stripe[2, 0], stripe[2, 1] = +WHEEL_W * SIZE, +WHEEL_R * c2 * SIZE
    stripe[3, 0], stripe[3, 1] = -WHEEL_W * SIZE, +WHEEL_R * c2 * SIZE
    return True, stripe


@njit(cache=True)
def car_polygons(local, start, body, wheel, color, transforms, phases, rotation, zoom, translation):
    """``Car.draw``'s polygons (particles aside) in pixels, in its drawing order.

    The car, described once per car: ``local`` float32 (V, 2) fixture
    vertices in their body's frame, polygon ``i`` being ``local[start[i]:
    start[i + 1]]`` of body ``body[i]``, drawn in ``color[i]`` (0xRRGGBB),
    followed by the white stripe of wheel ``wheel[i]`` (-1: not a wheel).
    Per frame: ``transforms`` float32 (B, 4) each body's Box2D transform
    ``(cos, sin, x, y)``, ``phases`` float64 the wheels' phases, and the
    view (see :func:`place`). Box2D's ``transform * vertex`` is float32
    ``(c*x - s*y) + px``, ``(s*x + c*y) + py``, computed here alike.

    Returns ``(x, y, start, color)``: float64 pixel vertices, offsets and
    0xRRGGBB colours, as the raster takes them.
    """
    polygons = start.shape[0] - 1
    capacity = local.shape[0] + 4 * polygons
    wx = np.empty(capacity, np.float32)
    wy = np.empty(capacity, np.float32)
    out_start = np.zeros(2 * polygons + 1, np.int64)
    out_color = np.empty(2 * polygons, np.int64)
    n = v = 0
    for i in range(polygons):
        c, s, px, py = transforms[body[i], 0], transforms[body[i], 1], transforms[body[i], 2], transforms[body[i], 3]
        for j in range(start[i], start[i + 1]):
            wx[v] = (c * local[j, 0] - s * local[j, 1]) + px
            wy[v] = (s * local[j, 0] + c * local[j, 1]) + py
            v += 1
        out_color[n] = color[i]
        n += 1
        out_start[n] = v
        if wheel[i] >= 0:
            drawn, stripe = _white_stripe(phases[wheel[i]])
            if drawn:
                for j in range(4):
                    wx[v] = (c * stripe[j, 0] - s * stripe[j, 1]) + px
                    wy[v] = (s * stripe[j, 0] + c * stripe[j, 1]) + py
                    v += 1
                out_color[n] = _WHITE
                n += 1
                out_start[n] = v
    x = np.empty(v, np.float64)
    y = np.empty(v, np.float64)
    place(wx[:v].astype(np.float64), wy[:v].astype(np.float64), rotation, zoom, translation, x, y)
    return x, y, out_start[: n + 1].copy(), out_color[:n].copy()


@njit(cache=True)
def hud_polygons(width, height, velocity_x, velocity_y, omegas, joint_angle, angular_velocity):
    """``_render_indicators``' polygons in the flipped frame, in its order:
    the panel, then each bar whose value exceeds 1e-4 in magnitude.

    ``velocity_*`` the hull's linear velocity, ``omegas`` (4,) the wheels'
    angular speeds, ``joint_angle`` the front-left wheel's steering joint,
    ``angular_velocity`` the hull's. Returns ``(x, y, start, color)`` like
    :func:`car_polygons`.
    """
    W, H = float(width), float(height)
    s = W / 40.0
    h = H / 40.0
    x = np.empty(32, np.float64)
    y = np.empty(32, np.float64)
    start = np.zeros(9, np.int64)
    color = np.empty(8, np.int64)
    # The panel: [(W, H), (W, H - 5h), (0, H - 5h), (0, H)].
    x[0], x[1], x[2], x[3] = W, W, 0.0, 0.0
    y[0], y[1], y[2], y[3] = H, H - 5 * h, H - 5 * h, H
    start[1], color[0] = 4, _HUD_COLORS[0]
    n = 1
    true_speed = np.sqrt(np.square(velocity_x) + np.square(velocity_y))
    values = (true_speed, omegas[0], omegas[1], omegas[2], omegas[3], joint_angle, angular_velocity)
    for item in range(7):
        value = values[item]
        if abs(value) <= 1e-4:
            continue
        v = 4 * n
        if item < 5:  # vertical_ind(place, val)
            place_ = 5 if item == 0 else 6 + item
            val = 0.02 * true_speed if item == 0 else 0.01 * value
            top = H - (h + h * val)
            x[v], y[v] = place_ * s, top
            x[v + 1], y[v + 1] = (place_ + 1) * s, top
            x[v + 2], y[v + 2] = (place_ + 1) * s, H - h
            x[v + 3], y[v + 3] = (place_ + 0) * s, H - h
        else:  # horiz_ind(place, val)
            place_ = 20 if item == 5 else 30
            val = -10.0 * value if item == 5 else -0.8 * value
            x[v], y[v] = (place_ + 0) * s, H - 4 * h
            x[v + 1], y[v + 1] = (place_ + val) * s, H - 4 * h
            x[v + 2], y[v + 2] = (place_ + val) * s, H - 2 * h
            x[v + 3], y[v + 3] = (place_ + 0) * s, H - 2 * h
        color[n] = _HUD_COLORS[item + 1]
        n += 1
        start[n] = 4 * n
    return x[: 4 * n].copy(), y[: 4 * n].copy(), start[: n + 1].copy(), color[:n].copy()


def to_pixels(x, y, angle, zoom, translation):
    """Vectorised ``Vector2(c).rotate_rad(angle) * zoom + translation``.

    ``x`` and ``y`` are float64 arrays of world coordinates; returns pixel
    coordinates bit-identical to the reference's per-vertex Python.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    px, py = np.empty_like(x), np.empty_like(y)
    place(x.ravel(), y.ravel(), rotation(angle), zoom, translation, px.ravel(), py.ravel())
    return px, py
