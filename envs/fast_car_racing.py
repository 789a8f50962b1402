"""A CarRacing that draws the same frames as Gymnasium's, several times faster.

Gymnasium's ``CarRacing`` spends almost all of a step in pure-Python drawing:
every frame it rotates, zooms and translates ~400 grass and ~300 road polygons
one vertex at a time with ``pygame.math.Vector2`` and tests each for
visibility, although only a few dozen touch the 1000x800 canvas.

:class:`FastCarRacing` subclasses Gymnasium's ``CarRacing`` and overrides only
the drawing (``_render`` and ``_render_road``), so physics, rewards,
terminations, ``info``, spaces and constructor arguments *are* Gymnasium's own
code. The drawing computes the same thing differently:

* all polygon vertices are transformed at once with NumPy, using the exact
  float64 operations (and operation order) pygame's ``Vector2.rotate_rad``
  and the reference's ``c * zoom + translation`` use, so every vertex handed
  to the rasteriser is the same Python float as in the reference;
* polygons are culled in bulk, and more tightly than the reference: a polygon
  is skipped when its bounding box misses the pixels that survive into the
  observation (the canvas, minus the rows the indicator panel paints over);
  a skipped polygon would not have changed a single pixel;
* the polygons that are drawn go through pygame's own rasteriser
  (``gfxdraw.aapolygon`` + ``gfxdraw.filled_polygon``) with the same vertices,
  colours and order, so pixels are bit-identical;
* the background square, which covers the whole canvas once the start zoom
  is over, is replaced by ``Surface.fill`` with the exact pixel value pygame
  would have rasterised (checked geometrically every frame, else drawn);
* the canvases are reused instead of allocated per frame, the vertical flip is
  a NumPy copy, and the score text (a pure function of its string) is cached.

Equality with Gymnasium's environment (observations, rewards, terminations,
truncations, info) is asserted frame by frame in ``tests/test_fast_car_racing.py``.

Version guard: the drawing above re-implements specific Gymnasium (and pygame)
code. :func:`reference_fingerprint` hashes the source of the reproduced
Gymnasium methods and the drawing constants; :func:`fast_car_racing_available`
compares it with :data:`REFERENCE_FINGERPRINT` (the version this file was
written and tested against) and also checks, numerically, that the vectorised
rotation matches pygame's ``Vector2.rotate_rad``. If either check fails it
warns once and returns False, and :func:`car_racing_class` hands out
Gymnasium's own ``CarRacing``; a ``FastCarRacing`` constructed anyway falls
back to the inherited reference drawing, so it never trains on a different
task. After auditing a new Gymnasium release, run the equality tests and update
:data:`REFERENCE_FINGERPRINT` to the printed value.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import warnings

import numpy as np

from gymnasium.envs.box2d import car_racing as _reference
from gymnasium.envs.box2d.car_racing import CarRacing

# pygame is imported by gymnasium's car_racing module already; importing it
# here after gymnasium keeps gymnasium's DependencyNotInstalled message first.
import pygame
from pygame import gfxdraw

__all__ = [
    "FastCarRacing",
    "REFERENCE_FINGERPRINT",
    "car_racing_class",
    "fast_car_racing_available",
    "reference_fingerprint",
]

# sha256 of the reproduced Gymnasium code (see reference_fingerprint) for
# gymnasium 1.4.0 (CarRacing-v3), against which FastCarRacing was verified.
REFERENCE_FINGERPRINT = "c8e4a56699e1aeef21d30624182c93d3ff8744675e783c599a2c3429fe91d6d2"

# The Gymnasium methods whose behaviour FastCarRacing reproduces or relies on:
# _render and _render_road (+ _draw_colored_polygon) are re-implemented;
# _create_track builds the road_poly list the cache reads and reset replaces
# it (a new list per episode is how the cache notices); _render_indicators
# draws the panel whose area lets us cull polygons; _create_image_array is
# called unchanged but its output is what is compared.
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

STATE_W = _reference.STATE_W
STATE_H = _reference.STATE_H
VIDEO_W = _reference.VIDEO_W
VIDEO_H = _reference.VIDEO_H
WINDOW_W = _reference.WINDOW_W
WINDOW_H = _reference.WINDOW_H
SCALE = _reference.SCALE
ZOOM = _reference.ZOOM
PLAYFIELD = _reference.PLAYFIELD
GRASS_DIM = _reference.GRASS_DIM
MAX_SHAPE_DIM = _reference.MAX_SHAPE_DIM

# pygame's math module: VECTOR_EPSILON and the constants of _vector2_rotate_helper.
_VECTOR_EPSILON = 1e-6
_TWO_PI = 2.0 * math.pi
_HALF_PI = math.pi / 2.0

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


def reference_fingerprint() -> str:
    """Hash of the installed Gymnasium CarRacing code that FastCarRacing reproduces.

    Covers the source text of the methods in ``_FINGERPRINTED_METHODS`` and the
    values of the drawing constants. Returns ``"unavailable"`` if the source
    cannot be read (e.g. a bytecode-only install), which never matches.
    """
    digest = hashlib.sha256()
    try:
        for name in _FINGERPRINTED_METHODS:
            digest.update(inspect.getsource(getattr(CarRacing, name)).encode())
    except (OSError, TypeError, AttributeError):
        return "unavailable"
    for name in _FINGERPRINTED_CONSTANTS:
        digest.update(f"{name}={getattr(_reference, name, None)!r};".encode())
    return digest.hexdigest()


def _rotation(angle: float) -> tuple[bool, int, float, float]:
    """Replicate the set-up of pygame's ``_vector2_rotate_helper`` for ``angle``.

    Returns ``(special, quadrant, cos, sin)``. pygame reduces the angle with
    C ``fmod`` and, within ``VECTOR_EPSILON`` of a multiple of 90 degrees,
    swaps/negates coordinates instead of multiplying; otherwise it computes
    ``x' = cos*x - sin*y`` and ``y' = sin*x + cos*y`` with libm ``sin``/``cos``.
    Python's ``math.fmod/sin/cos`` call the same libm functions, and there is
    one angle per frame, so only the per-vertex products need NumPy (whose
    float64 multiply/subtract round exactly like C's).
    """
    angle = math.fmod(angle, _TWO_PI)
    if angle < 0:
        angle += _TWO_PI
    if math.fmod(angle + _VECTOR_EPSILON, _HALF_PI) < 2 * _VECTOR_EPSILON:
        return True, int((angle + _VECTOR_EPSILON) / _HALF_PI), 1.0, 0.0
    return False, 0, math.cos(angle), math.sin(angle)


def _transform(x, y, angle, zoom, translation):
    """Vectorised ``Vector2(c).rotate_rad(angle) * zoom + translation``.

    ``x`` and ``y`` are float64 arrays of world coordinates; returns pixel
    coordinates bit-identical to the reference's per-vertex Python.
    """
    special, quadrant, cos_a, sin_a = _rotation(angle)
    if special:
        if quadrant in (0, 4):
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


def _rotation_matches_pygame(samples: int = 2000) -> bool:
    """Check numerically that :func:`_transform` reproduces pygame's Vector2.

    Uses random vertices and angles (including exact multiples of 90 degrees
    and values within the special-case epsilon) so a changed pygame rotation
    is caught at start-up rather than by subtly different frames.
    """
    rng = np.random.default_rng(12345)
    angles = list(rng.uniform(-20.0, 20.0, size=48))
    angles += [0.0, -0.0, _HALF_PI, math.pi, -_HALF_PI, 3 * _HALF_PI, _TWO_PI]
    angles += [_HALF_PI + 5e-7, -3e-7, math.pi - 9e-7, 1e-5]
    x = rng.uniform(-400.0, 400.0, size=samples)
    y = rng.uniform(-400.0, 400.0, size=samples)
    zoom, translation = 16.2, (500.0 + 0.123, 200.0 - 0.456)
    for angle in angles:
        fast_x, fast_y = _transform(x, y, angle, zoom, translation)
        for i in range(0, samples, 97):
            v = pygame.math.Vector2((float(x[i]), float(y[i]))).rotate_rad(angle)
            ref = (v[0] * zoom + translation[0], v[1] * zoom + translation[1])
            if ref != (float(fast_x[i]), float(fast_y[i])):
                return False
    return True


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
        _availability = not problems
        if problems:
            warnings.warn(
                "FastCarRacing disabled, using Gymnasium's own CarRacing instead "
                "(identical task, about 5x slower): "
                + "; ".join(problems)
                + ". Run tests/test_fast_car_racing.py and update "
                "envs.fast_car_racing.REFERENCE_FINGERPRINT once they pass.",
                RuntimeWarning,
                stacklevel=2,
            )
    return _availability


def car_racing_class(exact_env: bool = False) -> type[CarRacing]:
    """The CarRacing class to train on.

    ``FastCarRacing`` unless ``exact_env`` is set or the fast version does not
    match the installed Gymnasium (then Gymnasium's ``CarRacing``, with a
    warning from :func:`fast_car_racing_available`).
    """
    if exact_env or not fast_car_racing_available():
        return CarRacing
    return FastCarRacing


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


class FastCarRacing(CarRacing):
    """Gymnasium's ``CarRacing`` with vectorised, culled road drawing.

    Same constructor arguments, spaces, physics, rewards and frames as
    ``gymnasium.envs.box2d.car_racing.CarRacing`` (bit for bit, for the same
    seeds and actions); see the module docstring for how. All render modes
    (``None``/state pixels, ``"rgb_array"``, ``"human"``) work.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Checked once per process; if the installed gymnasium moved on, draw
        # with the inherited (reference) methods instead of reproducing old code.
        self._fast_drawing = fast_car_racing_available()
        self._reset_drawing_caches()

    # ------------------------------------------------------------------ caches
    def _reset_drawing_caches(self):
        self._canvas = None  # the unflipped frame, reused every frame
        self._flipped = None  # the flipped frame (becomes self.surf)
        self._canvas_format_key = None
        self._font = None
        self._text_cache: dict[str, pygame.Surface] = {}
        self._fill_pixels: dict[tuple, int] = {}
        self._polygons_for = None  # the road_poly list the arrays below mirror
        self._polygon_cache = None
        self._road_colors: list = []

    def _polygon_arrays(self):
        """Grass then road polygons in world units, rebuilt once per track.

        Returns ``(x, y, centre_x, centre_y, radius)``: (P, 4) vertex arrays
        and each polygon's bounding circle (used only to pre-select the
        polygons near the car). ``reset`` builds a new ``road_poly`` list, so
        its identity (and length) tells whether the cache is stale. Road
        colours are *not* cached: the contact listener repaints tiles in place.
        """
        road_poly = self.road_poly
        if self._polygons_for is not road_poly or len(self._road_colors) != len(
            road_poly
        ):
            if any(len(poly) != 4 for poly, _ in road_poly):
                return None  # not the track layout this code knows; draw reference
            road = np.array([poly for poly, _ in road_poly], dtype=np.float64)
            vertices = np.concatenate([_GRASS, road.reshape(-1, 4, 2)])
            poly_x = np.ascontiguousarray(vertices[:, :, 0])
            poly_y = np.ascontiguousarray(vertices[:, :, 1])
            centre_x, centre_y = poly_x.mean(axis=1), poly_y.mean(axis=1)
            radius = np.sqrt(
                ((poly_x - centre_x[:, None]) ** 2 + (poly_y - centre_y[:, None]) ** 2).max(
                    axis=1
                )
            )
            self._polygon_cache = (poly_x, poly_y, centre_x, centre_y, radius)
            self._road_colors = [color for _, color in road_poly]
            self._polygons_for = road_poly
        return self._polygon_cache

    def _fill_pixel(self, surface, color) -> int:
        """The mapped pixel gfxdraw.filled_polygon writes for ``color``.

        Found by rasterising a small square on a scratch surface of the same
        format, so colour conversion (e.g. float colours under
        ``domain_randomize``) is pygame's own.
        """
        key = (surface.get_bitsize(), surface.get_masks(), tuple(map(float, color)))
        pixel = self._fill_pixels.get(key)
        if pixel is None:
            if len(self._fill_pixels) > 64:  # domain_randomize: a colour per episode
                self._fill_pixels.clear()
            scratch = pygame.Surface((8, 8), 0, surface)
            gfxdraw.filled_polygon(scratch, [(0, 0), (7, 0), (7, 7), (0, 7)], color)
            pixel = scratch.get_at_mapped((3, 3))
            self._fill_pixels[key] = pixel
        return pixel

    # ----------------------------------------------------------------- drawing
    def _render_road(self, zoom, translation, angle):
        """Draw background, grass and road on ``self.surf``, overwriting it.

        Gives the pixels ``CarRacing._render_road`` gives on the fresh, zeroed
        Surface the reference draws on every frame; see the module docstring.
        """
        if not self._fast_drawing:
            return super()._render_road(zoom, translation, angle)
        arrays = self._polygon_arrays()
        if arrays is None:  # unknown track layout: the reference, on a zeroed canvas
            self.surf.fill(0)
            return super()._render_road(zoom, translation, angle)
        surface = self.surf
        poly_x, poly_y, centre_x, centre_y, radius = arrays

        # Every kept pixel is within _REACH_PX of the car's pixel (W/2, H/4)
        # (the reference puts the car there), i.e. within `reach` world units
        # of the car. Exact pixel arithmetic below decides; these world-space
        # tests only need to be conservative, hence the generous margins.
        car_x, car_y = self.car.hull.position
        reach = _REACH_PX / zoom

        # Background square (drawn with clip=False by the reference). If it
        # contains everything within `reach` of the car, it covers the canvas
        # with its outline >= _FILL_MARGIN px outside: a plain fill is exact.
        if abs(car_x) + reach <= PLAYFIELD and abs(car_y) + reach <= PLAYFIELD:
            surface.fill(self._fill_pixel(surface, self.bg_color))
        else:  # start zoom or near the edge: zero like a fresh Surface, draw
            surface.fill(0)
            fx, fy = _transform(_FIELD[:, 0], _FIELD[:, 1], angle, zoom, translation)
            field = list(zip(fx.tolist(), fy.tolist()))
            gfxdraw.aapolygon(surface, field, self.bg_color)
            gfxdraw.filled_polygon(surface, field, self.bg_color)

        # Pre-select polygons whose bounding circle comes within `reach`: the
        # others lie > _REACH_PX px from the car's pixel, so they cannot touch
        # a kept pixel (a sound cull in its own right, not just a speed-up).
        near = np.flatnonzero(
            (centre_x - car_x) ** 2 + (centre_y - car_y) ** 2
            <= (radius + (reach + 1.0)) ** 2
        )
        if near.size == 0:
            return
        # Same element-wise float operations as the reference per vertex, so
        # the subset's pixel coordinates are the reference's exactly.
        px, py = _transform(poly_x[near], poly_y[near], angle, zoom, translation)
        # The reference draws a polygon if any vertex is inside the canvas
        # grown by MAX_SHAPE_DIM; we draw the subset whose box also reaches
        # the kept pixels, which yields identical pixels.
        inside = (
            (px >= -MAX_SHAPE_DIM)
            & (px <= WINDOW_W + MAX_SHAPE_DIM)
            & (py >= -MAX_SHAPE_DIM)
            & (py <= WINDOW_H + MAX_SHAPE_DIM)
        ).any(axis=1)
        reaches = (
            (px.max(axis=1) >= -_CULL_MARGIN)
            & (px.min(axis=1) <= WINDOW_W - 1 + _CULL_MARGIN)
            & (py.max(axis=1) >= _PANEL_ROWS - _CULL_MARGIN)
            & (py.min(axis=1) <= WINDOW_H - 1 + _CULL_MARGIN)
        )
        keep = np.flatnonzero(inside & reaches)
        if keep.size == 0:
            return
        drawn = near[keep]
        px, py = px[keep], py[keep]
        vertices = np.stack([px, py], axis=-1).tolist()
        n_grass = len(_GRASS)
        grass_color = self.grass_color
        road_colors = self._road_colors
        aapolygon, filled_polygon = gfxdraw.aapolygon, gfxdraw.filled_polygon
        for index, poly in zip(drawn.tolist(), vertices):
            if index < n_grass:
                color = grass_color
            else:
                color = [int(c) for c in road_colors[index - n_grass]]
            aapolygon(surface, poly, color)
            filled_polygon(surface, poly, color)

    def _score_text(self, text: str) -> pygame.Surface:
        """``font.render(text, ...)`` as the reference does it, memoised.

        The reference loads the default font from disk and renders the score
        every frame; the result depends only on the string.
        """
        surface = self._text_cache.get(text)
        if surface is None:
            if len(self._text_cache) > 256:
                self._text_cache.clear()
            try:
                surface = self._render_text(text)
            except pygame.error:  # font module re-initialised (pygame.quit elsewhere)
                self._font = None
                surface = self._render_text(text)
            self._text_cache[text] = surface
        return surface

    def _render_text(self, text: str) -> pygame.Surface:
        if self._font is None:
            self._font = pygame.font.Font(pygame.font.get_default_font(), 42)
        return self._font.render(text, True, (255, 255, 255), (0, 0, 0))

    def _canvases(self):
        """The two reused 1000x800 frames, (re)made like the reference's.

        ``pygame.Surface((W, H))`` picks its pixel format from the display (if
        any), so they are rebuilt whenever a fresh Surface's format differs.
        """
        display = pygame.display.get_surface() if pygame.display.get_init() else None
        probe_key = None if display is None else (display.get_bitsize(), display.get_masks())
        if self._canvas is None or self._canvas_format_key != probe_key:
            self._canvas = pygame.Surface((WINDOW_W, WINDOW_H))
            self._flipped = pygame.Surface((WINDOW_W, WINDOW_H), 0, self._canvas)
            self._canvas_format_key = probe_key
        return self._canvas, self._flipped

    def _render(self, mode: str):
        """``CarRacing._render`` with reused canvases and cached text.

        Follows the reference line by line; the differences are marked.
        """
        if not self._fast_drawing:
            return super()._render(mode)
        assert mode in self.metadata["render_modes"]

        pygame.font.init()
        if self.screen is None and mode == "human":
            pygame.display.init()
            self.screen = pygame.display.set_mode((WINDOW_W, WINDOW_H))
        if self.clock is None:
            self.clock = pygame.time.Clock()

        if "t" not in self.__dict__:
            return  # reset() not called yet

        # Reference: a fresh (zeroed) Surface per frame; _render_road starts
        # by filling the reused one.
        canvas, flipped = self._canvases()
        self.surf = canvas

        assert self.car is not None
        # computing transformations (verbatim: same float operations)
        angle = -self.car.hull.angle
        # Animating first second zoom.
        zoom = 0.1 * SCALE * max(1 - self.t, 0) + ZOOM * SCALE * min(self.t, 1)
        scroll_x = -(self.car.hull.position[0]) * zoom
        scroll_y = -(self.car.hull.position[1]) * zoom
        trans = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
        trans = (WINDOW_W / 2 + trans[0], WINDOW_H / 4 + trans[1])

        self._render_road(zoom, trans, angle)
        self.car.draw(
            self.surf,
            zoom,
            trans,
            angle,
            mode not in ["state_pixels_list", "state_pixels"],
        )

        # Reference: pygame.transform.flip into a new Surface; same pixels.
        flipped_pixels = pygame.surfarray.pixels2d(flipped)
        canvas_pixels = pygame.surfarray.pixels2d(canvas)
        np.copyto(flipped_pixels, canvas_pixels[:, ::-1])
        del flipped_pixels, canvas_pixels  # unlock both surfaces before blits
        self.surf = flipped

        # showing stats
        self._render_indicators(WINDOW_W, WINDOW_H)

        # Reference: a new Font from disk and a new text render every frame.
        text = self._score_text(f"{self.reward:04.0f}")
        text_rect = text.get_rect()
        text_rect.center = (60, WINDOW_H - WINDOW_H * 2.5 / 40.0)
        self.surf.blit(text, text_rect)

        if mode == "human":
            pygame.event.pump()
            self.clock.tick(self.metadata["render_fps"])
            assert self.screen is not None
            self.screen.fill(0)
            self.screen.blit(self.surf, (0, 0))
            pygame.display.flip()
        elif mode == "rgb_array":
            return self._create_image_array(self.surf, (VIDEO_W, VIDEO_H))
        elif mode == "state_pixels":
            return self._create_image_array(self.surf, (STATE_W, STATE_H))
        else:
            return self.isopen

    def close(self):
        super().close()
        # pygame.quit() may have been called: drop surfaces and the font.
        self._reset_drawing_caches()

