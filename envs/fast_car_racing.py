"""A CarRacing that draws the same frames as Gymnasium's, several times faster.

Gymnasium's ``CarRacing`` spends almost all of a step drawing: every frame it
rotates, zooms and translates ~400 grass and ~300 road polygons one vertex at
a time with ``pygame.math.Vector2``, tests each for visibility (only a few
dozen touch the 1000x800 canvas), rasterises them with pygame, flips the
canvas, draws the indicator panel and score, and shrinks the 3 MB canvas to
the 96x96 observation with ``pygame.transform.smoothscale``.

:class:`FastCarRacing` subclasses Gymnasium's ``CarRacing`` and overrides the
drawing (``_render`` and ``_render_road``) and the car's per-step dynamics
(:class:`envs.car_physics.FastCar`: the same float operations without NumPy
scalars), so Box2D, rewards, terminations, ``info``, spaces and constructor
arguments *are* Gymnasium's own code. The drawing computes the same thing
differently:

* polygon vertices are transformed in compiled loops (:mod:`envs.car_racing_state`
  and :mod:`envs.car_racing_scene`) with the exact float64 operations (and
  operation order) pygame's ``Vector2.rotate_rad`` and the reference's ``c *
  zoom + translation`` use, so every vertex is the same float as in the
  reference; the car's Box2D ``transform * vertex`` and the indicator bars
  are computed there too (float32 for Box2D, as Box2D does), the car's
  transforms read from its bodies' memory (:mod:`envs.box2d_memory`);
* polygons are culled in bulk, and more tightly than the reference: a polygon
  is skipped when its bounding box misses the pixels that survive into the
  observation (the canvas, minus the rows the indicator panel paints over);
  a skipped polygon would not have changed a single pixel;
* state observations (``step``/``reset``) never touch a canvas: one compiled
  call (:func:`envs.car_racing_state.state_frame`) culls, places and rasterises;
  :mod:`envs.car_racing_raster` computes the 96x96 frame row by row with
  exact ports of the pygame-ce C code the reference calls (SDL_gfx
  ``aapolygon``/``filled_polygon``, ``draw.polygon``, the blit, the flip and
  smoothscale's SSE2 shrink), from the same integer vertices, colours, panel
  polygons and score text; see that module;
* ``render()`` frames (``"rgb_array"``, ``"human"``), and any state frame the
  raster cannot reproduce (another pygame or smoothscale backend, another
  canvas pixel format, colours with alpha, an unknown track layout), are
  drawn with pygame's own rasteriser from the same vertices and colours, on
  reused canvases: the background square becomes ``Surface.fill`` with the
  pixel pygame would rasterise whenever it covers the canvas (checked
  geometrically every frame), the flip is a NumPy copy and the score text (a
  pure function of its string) is cached.

Equality with Gymnasium's environment (observations, rewards, terminations,
truncations, info) is asserted frame by frame in ``tests/test_fast_car_racing.py``;
the raster is checked against pygame on random inputs in
``tests/test_car_racing_raster.py``. :mod:`envs.car_racing_audit` checks at start-up
that the installed Gymnasium, pygame and Box2D are the ones reproduced (else Gymnasium's
own ``CarRacing``, or pygame's drawing, with a warning).
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.box2d import car_racing as _reference
from gymnasium.envs.box2d.car_racing import CarRacing

# pygame is imported by gymnasium's car_racing module already; importing it
# here after gymnasium keeps gymnasium's DependencyNotInstalled message first.
import pygame
from pygame import gfxdraw

from envs import box2d_memory, car_racing_state
from envs.car_racing_audit import fast_car_racing_available, raster_available
from envs.car_physics import FastCar
from envs.car_racing_scene import rotation, to_pixels
from envs.car_racing_state import (
    PLAYFIELD, STATE_H, STATE_W, WINDOW_H, WINDOW_W, _FIELD, _GRASS, _N_GRASS, _REACH_PX, _cull,
)

__all__ = ["FastCarRacing", "car_racing_class"]


VIDEO_W = _reference.VIDEO_W
VIDEO_H = _reference.VIDEO_H
SCALE = _reference.SCALE
ZOOM = _reference.ZOOM


def _view(angle, zoom, translation):
    """``(rotation(angle), zoom, (x, y))``: a frame's view as the compiled transforms take it."""
    return rotation(angle), zoom, (float(translation[0]), float(translation[1]))


def car_racing_class(exact_env: bool = False) -> type[CarRacing]:
    """The CarRacing class to train on.

    ``FastCarRacing`` unless ``exact_env`` is set or the fast version does not
    match the installed Gymnasium (then Gymnasium's ``CarRacing``, with a
    warning from :func:`fast_car_racing_available`).
    """
    if exact_env or not fast_car_racing_available():
        return CarRacing
    return FastCarRacing


def _gfx_filled_polygon(surface, color, points):
    """``gfxdraw.filled_polygon`` with ``pygame.draw.polygon``'s argument order."""
    gfxdraw.filled_polygon(surface, points, color)


def _scratch_pixel(draw_call, color, like, background) -> int:
    """The mapped pixel ``draw_call(surface, color, points)`` writes inside a square
    drawn on an 8x8 surface of ``like``'s format filled with ``background``, so
    colour conversion (and blending, if any) is pygame's own."""
    scratch = pygame.Surface((8, 8), 0, like)
    scratch.fill(background)
    draw_call(scratch, color, [(0, 0), (7, 0), (7, 7), (0, 7)])
    return scratch.get_at_mapped((3, 3))


# (bitsize, masks) of the 32-bit XRGB canvas whose pixels the raster writes.
_XRGB_FORMAT = (32, (0xFF0000, 0x00FF00, 0x0000FF, 0))


class _TextPixels:
    """Score texts' pixels, kept for every FastCarRacing of the process, up to ``limit`` bytes.

    A driving agent's score takes a new value every few steps, hundreds an episode, and
    the same ones again the next episode: keeping them all makes every text after a
    worker's first episodes a lookup (a cache of 256 cleared itself every episode). The
    score is white on black, so a text is kept one byte a pixel (~4 KB; 16 MiB hold
    ~3,900), its full pixels otherwise. Entries are ``(pixels, x, y)`` or None (a blit
    the raster cannot reproduce), keyed by the canvas format and the text.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.entries: dict[tuple, tuple | None] = {}
        self.nbytes = 0

    def get(self, key):
        """``(found, answer)``: the pixels (h, w) uint32 0xRRGGBB, x and y, or None."""
        if key not in self.entries:
            return False, None
        entry = self.entries[key]
        if entry is not None and entry[0].dtype == np.uint8:  # kept grey
            entry = (entry[0].astype(np.uint32) * np.uint32(0x010101), *entry[1:])
        return True, entry

    def put(self, key, answer):
        entry, nbytes = answer, 128  # the entry itself
        if answer is not None:
            pixels = answer[0]
            grey = (pixels & 0xFF).astype(np.uint8)
            if np.array_equal(grey.astype(np.uint32) * np.uint32(0x010101), pixels):
                entry = (grey, *answer[1:])
            nbytes += entry[0].nbytes
        if self.nbytes + nbytes > self.limit:
            self.clear()
        self.entries[key] = entry
        self.nbytes += nbytes

    def clear(self):
        self.entries.clear()
        self.nbytes = 0


_TEXT_PIXELS = _TextPixels(16 << 20)

# (r, g, b) int triples already packed to 0xRRGGBB by FastCarRacing._draw_rgb.
_INT_RGB: dict[tuple, int] = {}


class FastCarRacing(CarRacing):
    """Gymnasium's ``CarRacing`` with culled, compiled, canvas-free drawing.

    Same constructor arguments, spaces, physics, rewards and frames as
    ``gymnasium.envs.box2d.car_racing.CarRacing`` (bit for bit, for the same
    seeds and actions); see the module docstring for how. All render modes
    (``None``/state pixels, ``"rgb_array"``, ``"human"``) work.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Checked once per process; if the installed gymnasium moved on, draw and
        # simulate with the inherited (reference) code instead of reproducing old code.
        self._audited = fast_car_racing_available()
        self._reset_drawing_caches()

    def reset(self, *, seed=None, options=None):
        """``CarRacing.reset``; the car it builds then steps with :class:`~envs.car_physics.FastCar`.

        The reference's reset ends with one step of the reference's own car code, which
        FastCar reproduces; switching the new car's class afterwards changes no number.
        """
        result = super().reset(seed=seed, options=options)
        if self._audited:
            self.car.__class__ = FastCar
        return result

    # ------------------------------------------------------------------ caches
    def _reset_drawing_caches(self):
        self._canvas = None  # the unflipped frame, reused every frame
        self._flipped = None  # the flipped frame (becomes self.surf)
        self._canvas_format_key = None  # the display's format the canvases were made for
        self._canvas_format = None  # the canvases' (bitsize, masks)
        self._font = None
        self._text_cache: dict[str, pygame.Surface] = {}
        self._fill_pixels: dict[tuple, int] = {}
        self._rgb_cache: dict[tuple, int | None] = {}
        self._car_for = None  # the Car _car_cache describes
        self._car_cache = None
        self._last_text: tuple = (None, None)  # (key, _text_pixels' answer) of the last call
        self._polygons_for = None  # the road_poly list the arrays below mirror
        self._polygon_cache = None
        self._road_rgb = None  # (len(road_poly), 3) float64: see _share_road_colors

    def _polygon_arrays(self):
        """Grass then road polygons in world units, rebuilt once per track.

        Returns ``(x, y, centre_x, centre_y, radius)``: (P, 4) vertex arrays
        and each polygon's bounding circle (used only to skip, cheaply, the
        polygons far from the view). ``reset`` builds a new ``road_poly`` list, so
        its identity (and length) tells whether the cache is stale. A new track's
        colours become one array the tiles paint into (:meth:`_share_road_colors`).
        """
        road_poly = self.road_poly
        if self._polygons_for is not road_poly or self._road_rgb.shape[0] != len(road_poly):
            if any(len(poly) != 4 for poly, _ in road_poly):
                return None  # not the track layout this code knows; draw reference
            rgb = self._share_road_colors(road_poly)
            if rgb is None:
                return None
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
            self._road_rgb = rgb
            self._polygons_for = road_poly
        return self._polygon_cache

    def _share_road_colors(self, road_poly):
        """The road polygons' colours as one (len(road_poly), 3) float64 array the tiles paint into.

        The contact listener repaints a tile in place (``tile.color[:] = road_color``) at
        every contact, and the reference reads each drawn tile's colour every frame;
        gathering those small arrays cost ~15-25 us a frame. Instead each tile's ``color``
        (and its ``road_poly`` entry) becomes a view of its row here, so the listener's
        writes land in this array and a frame takes its tiles' colours with one index.
        Values and dtype are unchanged: tile colours are float64 arrays of 3 in
        Gymnasium, and the kerbs' int tuples stay in ``road_poly``, copied here as exact
        floats. None (draw with pygame) for colours of another shape, or unless every
        entry's colour is either a tuple (immutable) or the array of exactly one tile: a
        colour array shared by two entries, or held by no tile, would go stale here.
        """
        try:
            rgb = np.array([color for _, color in road_poly], dtype=np.float64).reshape(-1, 3)
        except (TypeError, ValueError):
            return None
        if rgb.shape[0] != len(road_poly):
            return None
        row_of = {id(color): k for k, (_, color) in enumerate(road_poly)}
        rows = [row_of.get(id(tile.color)) for tile in self.road]
        mutable = [k for k, (_, color) in enumerate(road_poly) if not isinstance(color, tuple)]
        if None in rows or sorted(rows) != mutable or any(
                not (isinstance(tile.color, np.ndarray) and tile.color.dtype == np.float64
                     and tile.color.shape == (3,)) for tile in self.road):
            return None
        for tile, k in zip(self.road, rows):
            tile.color = rgb[k]
            road_poly[k] = (road_poly[k][0], tile.color)
        return rgb

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
            pixel = _scratch_pixel(_gfx_filled_polygon, color, surface, 0)
            self._fill_pixels[key] = pixel
        return pixel

    # ----------------------------------------------------------------- drawing
    def _visible_polygons(self, view):
        """The grass and road polygons the reference draws that can change a kept pixel.

        ``view``: ``(rotation(angle), zoom, (translation x, y))``. Returns ``(indices, px, py)``: indices into the grass-then-road order
        (ascending, i.e. the reference's drawing order) and their (K, 4)
        pixel coordinates, bit-identical to the reference's; or None for a
        track layout this code does not know.
        """
        arrays = self._polygon_arrays()
        if arrays is None:
            return None
        poly_x, poly_y, centre_x, centre_y, radius = arrays
        return _cull(poly_x, poly_y, centre_x, centre_y, radius, *view)

    def _car_views(self):
        """The car's bodies' memory views (:meth:`FastCar.memory`), or None to read them
        through pybox2d (also for a car that is not a FastCar)."""
        car = self.car
        return car.memory() if type(car) is FastCar else None

    def _hull_pose(self):
        """The hull's ``(x, y, angle)``, its ``position`` and ``angle``: read from its memory
        where :mod:`envs.box2d_memory` can (the same floats, without SWIG proxies)."""
        views = self._car_views()
        if views is None:
            hull = self.car.hull
            x, y = hull.position
            return x, y, hull.angle
        return box2d_memory.position_angle(views[-1])

    def _field_covers_canvas(self, zoom, car_x, car_y) -> bool:
        """Whether the background square contains everything within reach of
        the car (the hull at ``car_x, car_y``): it then covers the canvas, its
        anti-aliased outline at least _FILL_MARGIN px outside, and filling the
        canvas with its colour is exact."""
        reach = _REACH_PX / zoom
        return abs(car_x) + reach <= PLAYFIELD and abs(car_y) + reach <= PLAYFIELD

    def _polygon_color(self, index):
        """The colour the reference passes to gfxdraw for polygon ``index``."""
        if index < _N_GRASS:
            return self.grass_color
        return [int(c) for c in self.road_poly[index - _N_GRASS][1]]

    def _render_road(self, zoom, translation, angle):
        """Draw background, grass and road on ``self.surf``, overwriting it.

        Gives the pixels ``CarRacing._render_road`` gives on the fresh, zeroed
        Surface the reference draws on every frame; see the module docstring.
        """
        if not self._audited:
            return super()._render_road(zoom, translation, angle)
        visible = self._visible_polygons(_view(angle, zoom, translation))
        if visible is None:  # unknown track layout: the reference, on a zeroed canvas
            self.surf.fill(0)
            return super()._render_road(zoom, translation, angle)
        surface = self.surf

        # Background square (drawn with clip=False by the reference). If it
        # contains everything within reach of the car, it covers the canvas
        # with its outline >= _FILL_MARGIN px outside: a plain fill is exact.
        if self._field_covers_canvas(zoom, *self._hull_pose()[:2]):
            surface.fill(self._fill_pixel(surface, self.bg_color))
        else:  # start zoom or near the edge: zero like a fresh Surface, draw
            surface.fill(0)
            fx, fy = to_pixels(_FIELD[:, 0], _FIELD[:, 1], angle, zoom, translation)
            field = list(zip(fx.tolist(), fy.tolist()))
            gfxdraw.aapolygon(surface, field, self.bg_color)
            gfxdraw.filled_polygon(surface, field, self.bg_color)

        drawn, px, py = visible
        vertices = np.stack([px, py], axis=-1).tolist()
        aapolygon, filled_polygon = gfxdraw.aapolygon, gfxdraw.filled_polygon
        for index, poly in zip(drawn.tolist(), vertices):
            color = self._polygon_color(index)
            aapolygon(surface, poly, color)
            filled_polygon(surface, poly, color)

    # ------------------------------------------------- state frame, no canvas
    def _raster_ok(self) -> bool:
        """Whether car_racing_raster reproduces this frame's pygame calls.

        Needs the audited pygame-ce (:func:`raster_available`), smoothscale's
        SSE2 backend (selectable at run time, so checked every frame) and a
        fresh canvas in the 32-bit XRGB format the raster writes.
        """
        if not raster_available() or pygame.transform.get_smoothscale_backend() != "SSE2":
            return False
        self._canvases()
        return self._canvas_format == _XRGB_FORMAT

    def _opaque_rgb(self, draw_call, color):
        """``color`` as the 0xRRGGBB pixel ``draw_call`` writes, or None if it blends.

        Found by drawing a square with ``draw_call`` (``gfxdraw.filled_polygon``
        or ``pygame.draw.polygon``) on two scratch surfaces of the canvas
        format with different backgrounds, so colour conversion (e.g. float
        colours under ``domain_randomize``) is pygame's own; a pixel that
        depends on the background means alpha < 255, which the raster does
        not reproduce.
        """
        # An array's dtype and bytes name its values exactly and cost a fifth of the float tuple.
        values = (color.dtype.str, color.tobytes()) if type(color) is np.ndarray else tuple(map(float, color))
        key = (draw_call, values)
        if key in self._rgb_cache:
            return self._rgb_cache[key]
        if len(self._rgb_cache) > 256:  # domain_randomize: new colours per episode
            self._rgb_cache.clear()
        canvas = self._canvases()[0]
        pixels = [_scratch_pixel(draw_call, color, canvas, background) & 0xFFFFFF
                  for background in (0x000000, 0xFFFFFF)]
        rgb = pixels[0] if pixels[0] == pixels[1] else None
        self._rgb_cache[key] = rgb
        return rgb

    def _draw_rgb(self, color):
        """``color`` as the pixel ``pygame.draw.polygon`` writes, or None.

        The car's and panel's colours are 3 ints in 0..255, which pygame maps
        to a 32-bit XRGB pixel by plain packing; anything else is mapped by
        pygame itself (:meth:`_opaque_rgb`).
        """
        key = tuple(color)
        rgb = _INT_RGB.get(key)
        if rgb is None:
            if len(key) == 3 and all(type(c) is int and 0 <= c <= 255 for c in key):
                rgb = _INT_RGB[key] = (key[0] << 16) | (key[1] << 8) | key[2]
            else:
                rgb = self._opaque_rgb(pygame.draw.polygon, color)
        return rgb

    def _car_description(self):
        """``Car.draw``'s polygons, built once per car (reset makes a new one):
        ``((local, start, body, wheel, color), bodies, addresses)``, the arrays as
        :func:`~envs.car_racing_scene.car_polygons` takes them, the bodies they belong
        to and the bodies' addresses (int64, empty where they are read through pybox2d:
        see :mod:`envs.box2d_memory`), or None if a colour is not an opaque pixel."""
        if self._car_for is not self.car:
            local, sizes, body, wheel, color, bodies = [], [0], [], [], [], []
            for b, obj in enumerate(self.car.drawlist):
                rgb = self._draw_rgb([int(c * 255) for c in obj.color])
                for fixture in obj.fixtures:
                    vertices = np.array(fixture.shape.vertices, dtype=np.float32)
                    local.append(vertices)
                    sizes.append(len(vertices))
                    body.append(b)
                    wheel.append(b if "phase" in obj.__dict__ else -1)
                    color.append(-1 if rgb is None else rgb)
                bodies.append(obj)
            self._car_cache = None
            if -1 not in color:
                self._car_cache = (
                    (np.concatenate(local), np.cumsum(sizes).astype(np.int64),
                     np.array(body, dtype=np.int64), np.array(wheel, dtype=np.int64),
                     np.array(color, dtype=np.int64)), bodies,
                    np.array([box2d_memory.address(b) for b in bodies] if box2d_memory.readable() else [],
                             dtype=np.int64),
                )
            self._car_for = self.car
        return self._car_cache

    def _car_state(self, bodies, addresses):
        """The car's bodies as :func:`~envs.car_racing_state.state_frame` takes them:
        ``(transforms (B, 4) float32, phases (B,) float64)``; the transforms are left for
        state_frame to read where the bodies' ``addresses`` are known."""
        phases = np.array([getattr(b, "phase", 0.0) for b in bodies], dtype=np.float64)
        if addresses.shape[0]:
            return np.empty((len(bodies), 4), np.float32), phases
        rows = []
        for car_body in bodies:  # each Box2D attribute read is a SWIG call: one each
            transform = car_body.transform
            rot, position = transform.q, transform.position
            rows.append((rot.c, rot.s, position.x, position.y))
        transforms = np.array(rows, np.float32)  # one conversion: a row assignment each cost more
        return transforms, phases

    def _hud_state(self):
        """``_render_indicators``' inputs as :func:`~envs.car_racing_scene.hud_polygons` takes them."""
        car = self.car
        views = self._car_views()
        if views is None:
            hull = car.hull
            velocity = hull.linearVelocity
            velocity_x, velocity_y, spin = float(velocity[0]), float(velocity[1]), float(hull.angularVelocity)
        else:
            velocity_x, velocity_y, spin = box2d_memory.velocity_spin(views[-1])
        omegas = np.array([w.omega for w in car.wheels], dtype=np.float64)
        return velocity_x, velocity_y, omegas, float(car.wheels[0].joint.angle), spin

    def _text_pixels(self, text: str):
        """``(pixels (h, w) uint32 0xRRGGBB, x, y)`` the score blit writes, or None.

        Blits the (cached) rendered text on two scratch surfaces with
        different backgrounds: equal results show the blit is an opaque copy.
        Answers are kept for the whole process (:class:`_TextPixels`); the arrays
        returned are shared, read-only by contract.
        """
        canvas = self._canvases()[0]
        key = (*self._canvas_format, text)
        if self._last_text[0] == key:  # the score holds for a few steps at least
            return self._last_text[1]
        found, answer = _TEXT_PIXELS.get(key)
        if not found:
            surface = self._score_text(text)
            rect = surface.get_rect()
            rect.center = (60, WINDOW_H - WINDOW_H * 2.5 / 40.0)
            copies = []
            for background in (0x000000, 0xFFFFFF):
                scratch = pygame.Surface(surface.get_size(), 0, canvas)
                scratch.fill(background)
                scratch.blit(surface, (0, 0))
                # A view of the pixels, masked into a new array: array2d's copy took ~5x as
                # long, and a driving agent's score changes every few steps.
                copies.append(pygame.surfarray.pixels2d(scratch).T & 0xFFFFFF)
            answer = None
            if np.array_equal(copies[0], copies[1]):
                answer = (np.ascontiguousarray(copies[0], dtype=np.uint32), rect.x, rect.y)
            _TEXT_PIXELS.put(key, answer)
        self._last_text = (key, answer)
        return answer

    def _state_frame(self, zoom, translation, angle, hull_position):
        """The state observation, computed by car_racing_state; None if it can't.

        Gathers what the reference draws (background square, grass and road via
        gfxdraw; car, then panel, bars and score via pygame): the world polygons,
        the Box2D state they are placed by, mapped colours and text pixels;
        :func:`~envs.car_racing_state.state_frame` computes the same float vertices
        and the 96x96 frame from them without a canvas. None (draw with pygame
        instead) for a polygon, colour or text the raster cannot reproduce (unknown
        track layout, alpha). ``hull_position``: the hull's ``(x, y)`` as ``_render`` read it.
        """
        road = self._polygon_arrays()
        if road is None:
            return None
        # Background and grass colours (numpy arrays, floats under domain_randomize) are
        # mapped by pygame (_opaque_rgb); road colours are truncated as the reference's
        # [int(c) for c in color] does, and packed (car_racing_state._pack_road_colors).
        field_pixel = self._opaque_rgb(_gfx_filled_polygon, self.bg_color)
        grass = self._opaque_rgb(_gfx_filled_polygon, self.grass_color)
        car = self._car_description()
        text = self._text_pixels(f"{self.reward:04.0f}")
        if field_pixel is None or grass is None or car is None or text is None:
            return None
        # The background square first (clip=False: always drawn). When it covers the
        # canvas with its outline off it (see _render_road), the canvas simply starts in
        # its colour (else -1: drawn on a zeroed canvas, the reference's fresh Surface).
        background = field_pixel if self._field_covers_canvas(zoom, *hull_position) else -1
        description, bodies, addresses = car
        ok, frame = car_racing_state.state_frame(
            road, self._road_rgb, field_pixel, grass, background, *_view(angle, zoom, translation),
            description, addresses, *self._car_state(bodies, addresses), self._hud_state(), *text,
        )
        return frame if ok else None

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
            self._canvas_format = (self._canvas.get_bitsize(), self._canvas.get_masks())
        return self._canvas, self._flipped

    def _render(self, mode: str):
        """``CarRacing._render`` with reused canvases and cached text.

        Follows the reference line by line; the differences are marked.
        """
        if not self._audited:
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

        assert self.car is not None
        # computing transformations (verbatim: same float operations)
        # Not in the reference: the hull's position and angle read once (_hull_pose).
        hull_x, hull_y, hull_angle = self._hull_pose()
        angle = -hull_angle
        # Animating first second zoom.
        zoom = 0.1 * SCALE * max(1 - self.t, 0) + ZOOM * SCALE * min(self.t, 1)
        scroll_x = -(hull_x) * zoom
        scroll_y = -(hull_y) * zoom
        trans = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
        trans = (WINDOW_W / 2 + trans[0], WINDOW_H / 4 + trans[1])

        # Not in the reference: the state frame without a canvas (self.surf
        # is then not updated; nothing reads it in this mode).
        if mode == "state_pixels" and self._raster_ok():
            frame = self._state_frame(zoom, trans, angle, (hull_x, hull_y))
            if frame is not None:
                return frame

        # Reference: a fresh (zeroed) Surface per frame; _render_road starts
        # by filling the reused one.
        canvas, flipped = self._canvases()
        self.surf = canvas

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

