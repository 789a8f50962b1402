"""envs.car_racing_raster must reproduce pygame's drawing and smoothscale exactly.

Each piece is compared with the real pygame call on random inputs: the
polygon rasterisers (``gfxdraw.aapolygon`` + ``gfxdraw.filled_polygon``,
``pygame.draw.polygon``) on random polygons, many partly or wholly off the
canvas; the shrink with ``pygame.transform.smoothscale`` on noise and on
run-structured canvases, and on canvases of other shapes; and the whole
state frame (flip, panel, text blit, shrink) with the reference pipeline.
Runtime: ~10 s plus a one-off Numba compile (cached in ``__pycache__``).
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import numpy as np
import pygame
import pytest
from pygame import gfxdraw

from envs import car_racing_raster as raster

W, H = 1000, 800


@pytest.fixture(scope="module", autouse=True)
def _pygame_video():
    pygame.display.init()  # gfxdraw needs the video subsystem
    yield


def _surface_pixels(surface) -> np.ndarray:
    """(H, W) 0xRRGGBB of a 32-bit XRGB Surface."""
    return np.ascontiguousarray(pygame.surfarray.array2d(surface).T).astype(np.int64) & 0xFFFFFF


def _pack(color) -> int:
    return (int(color[0]) << 16) | (int(color[1]) << 8) | int(color[2])


def _flat(polygons):
    """Polygons -> (x, y, start) as render_state_frame takes them."""
    sizes = [len(p) for p in polygons]
    points = np.concatenate(polygons) if polygons else np.zeros((0, 2))
    start = np.zeros(len(polygons) + 1, dtype=np.int64)
    np.cumsum(sizes, out=start[1:])
    return np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1]), start


def _random_polygons(rng, kind: int) -> list[np.ndarray]:
    """Road-like small quads, axis-aligned or diagonal boxes, or wild polygons."""
    count = int(rng.integers(1, 6))
    if kind == 0:  # small quads, often crossing the canvas border
        centres = rng.uniform(-200.0, 1200.0, size=(count, 1, 2))
        return list(centres + rng.uniform(-60.0, 60.0, size=(count, 4, 2)))
    if kind == 1:  # vertical/horizontal/45-degree edges: the special line cases
        polygons = []
        for _ in range(count):
            x, y = rng.integers(-50, 1050), rng.integers(-50, 850)
            w, h = rng.integers(0, 120, size=2)
            if rng.uniform() < 0.5:
                polygons.append(np.array([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], float))
            else:
                polygons.append(np.array([(x, y), (x + w, y + w), (x, y + 2 * w), (x - w, y + w)], float))
        return polygons
    scale = float(rng.choice([20.0, 400.0, 1500.0, 3000.0]))
    centre = rng.uniform([-300.0, -300.0], [1300.0, 1100.0])
    sides = int(rng.choice([3, 4, 4, 5]))
    return list(rng.uniform(-scale, scale, size=(count, sides, 2)) + centre)


def _random_colors(rng, count):
    return [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(count)]


def test_polygon_rasterisers_match_pygame():
    rng = np.random.default_rng(0)
    surface = pygame.Surface((W, H))
    assert surface.get_bitsize() == 32 and surface.get_masks()[:3] == (0xFF0000, 0xFF00, 0xFF)
    for trial in range(400):
        background = _random_colors(rng, 1)[0]
        surface.fill(background)
        gfx = _random_polygons(rng, trial % 3)
        draw = _random_polygons(rng, (trial + 1) % 3)
        gfx_colors, draw_colors = _random_colors(rng, len(gfx)), _random_colors(rng, len(draw))
        for polygon, color in zip(gfx, gfx_colors):
            points = [tuple(map(float, p)) for p in polygon]
            gfxdraw.aapolygon(surface, points, color)
            gfxdraw.filled_polygon(surface, points, color)
        for polygon, color in zip(draw, draw_colors):
            pygame.draw.polygon(surface, color, [tuple(map(float, p)) for p in polygon])
        canvas = raster.paint_canvas(
            *_flat(gfx), np.array([_pack(c) for c in gfx_colors], dtype=np.int64),
            *_flat(draw), np.array([_pack(c) for c in draw_colors], dtype=np.int64),
            W, H, _pack(background),
        )
        expected = _surface_pixels(surface)
        if not np.array_equal(canvas, expected):
            wrong = np.argwhere(canvas != expected)
            pytest.fail(f"trial {trial}: {len(wrong)} pixels differ, first (y, x) {wrong[:3].tolist()}")


def _run_canvas(rng) -> np.ndarray:
    """A canvas of constant-colour runs, rows repeating in bands, like a frame."""
    canvas = np.empty((H, W), dtype=np.int64)
    y = 0
    while y < H:
        band = int(rng.integers(1, 40))
        cuts = np.sort(rng.integers(0, W, size=int(rng.integers(0, 12))))
        row = np.empty(W, dtype=np.int64)
        for a, b, color in zip(np.r_[0, cuts], np.r_[cuts, W], rng.integers(0, 1 << 24, cuts.size + 1)):
            row[a:b] = color
        canvas[y : y + band] = row
        y += band
    return canvas


@pytest.mark.parametrize("kind", ["noise", "runs", "uniform"])
def test_shrink_matches_smoothscale(kind, sse2_smoothscale):
    rng = np.random.default_rng({"noise": 1, "runs": 2, "uniform": 3}[kind])
    for _ in range(3):
        if kind == "noise":
            canvas = rng.integers(0, 1 << 24, size=(H, W))
        elif kind == "runs":
            canvas = _run_canvas(rng)
        else:
            canvas = np.full((H, W), int(rng.integers(0, 1 << 24)), dtype=np.int64)
        surface = pygame.Surface((W, H))
        pygame.surfarray.blit_array(surface, canvas.T)
        scaled = pygame.transform.smoothscale(surface, (96, 96))
        expected = np.transpose(pygame.surfarray.array3d(scaled), (1, 0, 2))
        assert np.array_equal(raster.smoothscale_canvas(canvas.astype(np.uint32), 96, 96), expected)


def test_shrink_matches_smoothscale_on_random_shapes(sse2_smoothscale):
    """Canvas widths that are not multiples of the shrink's 64- and 8-pixel row
    comparisons (its scalar tail too), and other output sizes."""
    rng = np.random.default_rng(5)
    for width, height in [(1003, 97), (77, 450), (13, 9), (640, 130), (129, 64), (9, 300)]:
        out_w, out_h = int(rng.integers(1, width)), int(rng.integers(1, height))
        noise = rng.integers(0, 1 << 24, size=(height, width))
        bands = np.repeat(rng.integers(0, 1 << 24, size=(height // 3 + 1, width)), 3, axis=0)[:height]
        for canvas in (noise, bands):
            surface = pygame.Surface((width, height))
            pygame.surfarray.blit_array(surface, canvas.T)
            scaled = pygame.transform.smoothscale(surface, (out_w, out_h))
            expected = np.transpose(pygame.surfarray.array3d(scaled), (1, 0, 2))
            got = raster.smoothscale_canvas(canvas.astype(np.uint32), out_w, out_h)
            assert np.array_equal(got, expected), (width, height, out_w, out_h)


def test_state_frame_matches_the_reference_pipeline(sse2_smoothscale):
    """Scene, flip, panel and bars, text blit, smoothscale: as CarRacing._render."""
    rng = np.random.default_rng(4)
    for trial in range(40):
        gfx = _random_polygons(rng, trial % 3)
        scene = _random_polygons(rng, (trial + 1) % 3)
        hud = [np.array([(W, H), (W, H - 100.0), (0, H - 100.0), (0, H)])]
        hud += [rng.uniform([0, 600], [W, H], size=(4, 2)) for _ in range(3)]
        # A bar, as the indicators are: its rows repeat, which the raster paints once.
        (x0, y0), (x1, y1) = np.sort(rng.uniform([0, 700], [W, H], size=(2, 2)), axis=0)
        hud.insert(int(rng.integers(1, len(hud) + 1)), np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)]))
        colors = [_random_colors(rng, len(p)) for p in (gfx, scene, hud)]
        text = rng.integers(0, 1 << 24, size=(int(rng.integers(1, 60)), int(rng.integers(1, 140))))
        text_x, text_y = int(rng.integers(-40, 980)), int(rng.integers(680, 790))

        surface = pygame.Surface((W, H))  # zeroed, like the reference's fresh Surface
        for polygon, color in zip(gfx, colors[0]):
            points = [tuple(map(float, p)) for p in polygon]
            gfxdraw.aapolygon(surface, points, color)
            gfxdraw.filled_polygon(surface, points, color)
        for polygon, color in zip(scene, colors[1]):
            pygame.draw.polygon(surface, color, [tuple(map(float, p)) for p in polygon])
        surface = pygame.transform.flip(surface, False, True)
        for polygon, color in zip(hud, colors[2]):
            pygame.draw.polygon(surface, color, [tuple(map(float, p)) for p in polygon])
        text_surface = pygame.Surface(text.shape[::-1])
        pygame.surfarray.blit_array(text_surface, text.T)
        surface.blit(text_surface, (text_x, text_y))
        expected = np.transpose(
            pygame.surfarray.array3d(pygame.transform.smoothscale(surface, (96, 96))), (1, 0, 2)
        )

        packed = [np.array([_pack(c) for c in cs], dtype=np.int64) for cs in colors]
        frame = raster.render_state_frame(
            *_flat(gfx), packed[0], *_flat(scene), packed[1], *_flat(hud), packed[2],
            text.astype(np.uint32), text_x, text_y, W, H, 96, 96,
        )
        assert frame.dtype == np.uint8 and frame.shape == (96, 96, 3)
        assert np.array_equal(frame, expected), f"trial {trial}"
