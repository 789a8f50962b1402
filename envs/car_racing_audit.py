"""Whether FastCarRacing still reproduces the installed Gymnasium, pygame and Box2D.

FastCarRacing's drawing and car dynamics re-implement specific Gymnasium and
pygame code. :func:`reference_fingerprint` hashes the source of the reproduced
Gymnasium methods (``CarRacing``'s and ``Car.draw``, ``Car.step``, ``Car.gas``)
and their constants;
:func:`fast_car_racing_available` compares it with
:data:`REFERENCE_FINGERPRINT` (the version the drawing was written and tested
against) and also checks, numerically, that the vectorised rotation matches
pygame's ``Vector2.rotate_rad`` and the float32 car transform matches Box2D.
If a check fails it warns once and returns False, and
:func:`envs.fast_car_racing.car_racing_class` hands out Gymnasium's own ``CarRacing``; a
``FastCarRacing`` constructed anyway falls back to the inherited reference
drawing and car, so it never trains on a different task. After auditing a new
Gymnasium release, run the equality tests and update
:data:`REFERENCE_FINGERPRINT` to the printed value. The raster additionally
requires the audited pygame-ce (:data:`AUDITED_PYGAME`, see
:func:`raster_available`); with another pygame, state frames are drawn by
pygame itself (identical, about half as fast), with a warning.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import warnings

import Box2D
import numpy as np
from gymnasium.envs.box2d import car_dynamics as _car_dynamics
from gymnasium.envs.box2d import car_racing as _reference
from gymnasium.envs.box2d.car_racing import CarRacing

# pygame is imported by gymnasium's car_racing module already; importing it
# here after gymnasium keeps gymnasium's DependencyNotInstalled message first.
import pygame

from envs.car_racing_scene import car_polygons, rotation, to_pixels

__all__ = [
    "AUDITED_PYGAME",
    "REFERENCE_FINGERPRINT",
    "fast_car_racing_available",
    "raster_available",
    "reference_fingerprint",
]

# sha256 of the reproduced Gymnasium code (see reference_fingerprint) for
# gymnasium 1.4.0 (CarRacing-v3), against which FastCarRacing was verified.
REFERENCE_FINGERPRINT = "a7d185038ba977b9477e1a74dc58126d5190b0d89512637c830b81d0f3cbf60e"

# The pygame-ce release whose C code (SDL_gfx polygons, draw.polygon,
# smoothscale's SSE2 filters) envs.car_racing_raster reproduces.
AUDITED_PYGAME = "2.5.8"

# The Gymnasium methods whose behaviour FastCarRacing reproduces or relies on:
# _render and _render_road (+ _draw_colored_polygon) are re-implemented;
# _create_track builds the road_poly list the cache reads and reset replaces
# it (a new list per episode is how the cache notices); _render_indicators
# draws the panel whose area lets us cull polygons and whose polygons the
# raster path rebuilds; _create_image_array is reproduced by the raster path
# (and called unchanged otherwise). car_dynamics.Car's drawing and dynamics
# are reproduced too (below), and FrictionDetector._contact is hashed because
# the drawing relies on it repainting tiles in place (tile.color[:] = ...).
_FINGERPRINTED_METHODS = (
    "_render",
    "_render_road",
    "_draw_colored_polygon",
    "_render_indicators",
    "_create_image_array",
    "_create_track",
    "reset",
)
_FINGERPRINTED_CONSTANTS = (
    "STATE_W",
    "STATE_H",
    "VIDEO_W",
    "VIDEO_H",
    "WINDOW_W",
    "WINDOW_H",
    "SCALE",
    "PLAYFIELD",
    "ZOOM",
    "GRASS_DIM",
    "MAX_SHAPE_DIM",
)
# Car.draw's geometry is rebuilt for the raster; step and gas are reproduced by
# envs.car_physics.FastCar, which reads their constants from the module.
_FINGERPRINTED_CAR_METHODS = ("draw", "step", "gas")
_FINGERPRINTED_CAR_CONSTANTS = (
    "SIZE", "WHEEL_R", "WHEEL_W", "WHEEL_WHITE", "ENGINE_POWER", "WHEEL_MOMENT_OF_INERTIA", "FRICTION_LIMIT",
)


def reference_fingerprint() -> str:
    """Hash of the installed Gymnasium CarRacing code that FastCarRacing reproduces.

    Covers the source text of the methods in ``_FINGERPRINTED_METHODS`` and
    ``_FINGERPRINTED_CAR_METHODS`` and the values of the constants they use.
    Returns ``"unavailable"`` if the source cannot be read (e.g. a bytecode-only
    install), which never matches.
    """
    digest = hashlib.sha256()
    try:
        for name in _FINGERPRINTED_METHODS:
            digest.update(inspect.getsource(getattr(CarRacing, name)).encode())
        for name in _FINGERPRINTED_CAR_METHODS:
            digest.update(inspect.getsource(getattr(_car_dynamics.Car, name)).encode())
        digest.update(inspect.getsource(_reference.FrictionDetector._contact).encode())
    except (OSError, TypeError, AttributeError):
        return "unavailable"
    for name in _FINGERPRINTED_CONSTANTS:
        digest.update(f"{name}={getattr(_reference, name, None)!r};".encode())
    for name in _FINGERPRINTED_CAR_CONSTANTS:
        digest.update(f"{name}={getattr(_car_dynamics, name, None)!r};".encode())
    return digest.hexdigest()


def _rotation_matches_pygame(samples: int = 2000) -> bool:
    """Check numerically that :func:`~envs.car_racing_scene.to_pixels` reproduces pygame's Vector2.

    Uses random vertices and angles (including exact multiples of 90 degrees
    and values within the special-case epsilon) so a changed pygame rotation
    is caught at start-up rather than by subtly different frames.
    """
    rng = np.random.default_rng(12345)
    angles = list(rng.uniform(-20.0, 20.0, size=48))
    half_pi = math.pi / 2
    angles += [0.0, -0.0, half_pi, math.pi, -half_pi, 3 * half_pi, 2 * math.pi]
    angles += [half_pi + 5e-7, -3e-7, math.pi - 9e-7, 1e-5]
    x = rng.uniform(-400.0, 400.0, size=samples)
    y = rng.uniform(-400.0, 400.0, size=samples)
    zoom, translation = 16.2, (500.0 + 0.123, 200.0 - 0.456)
    for angle in angles:
        fast_x, fast_y = to_pixels(x, y, angle, zoom, translation)
        for i in range(0, samples, 97):
            v = pygame.math.Vector2((float(x[i]), float(y[i]))).rotate_rad(angle)
            ref = (v[0] * zoom + translation[0], v[1] * zoom + translation[1])
            if ref != (float(fast_x[i]), float(fast_y[i])):
                return False
    return True


def _box2d_transform_matches(samples: int = 500) -> bool:
    """Check that the compiled float32 car transform reproduces Box2D's ``transform * vertex``.

    Runs :func:`car_polygons` (identity view: no rotation, zoom 1) on random
    transforms and vertices. True if Box2D was built without fused
    multiply-adds, as the wheels on PyPI are; FastCarRacing's car drawing
    relies on it.
    """
    rng = np.random.default_rng(54321)
    transform = Box2D.b2Transform()
    transforms = np.empty((samples, 4), np.float32)
    local = np.empty((samples, 2), np.float32)
    expected = []
    for i in range(samples):
        position = (float(rng.uniform(-400, 400)), float(rng.uniform(-400, 400)))
        transform.Set(position, float(rng.uniform(-50, 50)))
        vertex = (float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3)))
        transforms[i] = (transform.q.c, transform.q.s, transform.position[0], transform.position[1])
        local[i] = vertex
        expected.append(tuple(transform * vertex))
    # One single-vertex "polygon" per sample, each on its own body.
    index = np.arange(samples, dtype=np.int64)
    x, y, _, _ = car_polygons(
        local, np.arange(samples + 1, dtype=np.int64), index, np.full(samples, -1, np.int64),
        np.zeros(samples, np.int64), transforms, np.zeros(samples), rotation(0.0), 1.0, (0.0, 0.0),
    )
    return list(zip(x.tolist(), y.tolist())) == expected


_availability: bool | None = None


def fast_car_racing_available() -> bool:
    """Whether FastCarRacing reproduces the installed Gymnasium CarRacing.

    True only if the installed Gymnasium's drawing code hashes to
    :data:`REFERENCE_FINGERPRINT` and pygame's vector rotation matches the
    vectorised one. Otherwise warns once (``RuntimeWarning``) and returns
    False; callers should then use Gymnasium's ``CarRacing``
    (:func:`car_racing_class` does this). The result is computed once.
    """
    global _availability
    if _availability is None:
        problems = []
        fingerprint = reference_fingerprint()
        if fingerprint != REFERENCE_FINGERPRINT:
            problems.append(
                "the installed gymnasium's CarRacing drawing code differs from the "
                f"version FastCarRacing reproduces (fingerprint {fingerprint[:12]}, "
                f"expected {REFERENCE_FINGERPRINT[:12]})"
            )
        if not _rotation_matches_pygame():
            problems.append(
                "pygame's Vector2.rotate_rad no longer matches the vectorised rotation"
            )
        if not _box2d_transform_matches():
            problems.append("Box2D's transform * vertex no longer matches float32 NumPy")
        _availability = not problems
        if problems:
            warnings.warn(
                "FastCarRacing disabled, using Gymnasium's own CarRacing instead "
                "(identical task, about 5x slower): "
                + "; ".join(problems)
                + ". Run tests/test_fast_car_racing.py and update "
                "envs.car_racing_audit.REFERENCE_FINGERPRINT once they pass.",
                RuntimeWarning,
                stacklevel=2,
            )
    return _availability


_raster_availability: bool | None = None


def raster_available() -> bool:
    """Whether the installed pygame is the one car_racing_raster reproduces.

    :mod:`envs.car_racing_raster` ports pygame-ce's C drawing and smoothscale
    code, audited for :data:`AUDITED_PYGAME`. With another pygame, state
    frames are drawn with pygame itself (identical, about 2x slower) and a
    ``RuntimeWarning`` says so once. Computed once per process.
    """
    global _raster_availability
    if _raster_availability is None:
        installed = pygame.version.ver
        _raster_availability = bool(getattr(pygame, "IS_CE", False)) and (
            installed == AUDITED_PYGAME
        )
        if not _raster_availability:
            warnings.warn(
                f"FastCarRacing draws its frames with pygame (identical, slower): the "
                f"installed pygame {installed} is not pygame-ce {AUDITED_PYGAME}, whose "
                "drawing envs.car_racing_raster reproduces. Audit the raster against "
                "the new C code, run tests/test_car_racing_raster.py and update "
                "envs.car_racing_audit.AUDITED_PYGAME.",
                RuntimeWarning,
                stacklevel=2,
            )
    return _raster_availability
