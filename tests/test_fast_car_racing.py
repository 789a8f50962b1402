"""FastCarRacing must be Gymnasium's CarRacing, frame for frame.

Each test drives a Gymnasium ``CarRacing`` and an ``envs.FastCarRacing`` side
by side with the same seed and actions and asserts that every observation is
``np.array_equal``, every reward, termination, truncation and info is equal, and
(``_run_side_by_side``) the car's whole state is the same to the bit after every step.
If the installed Gymnasium changes its CarRacing, ``test_reference_is_the_audited_version``
fails (and the equality tests refuse to pass vacuously on the fallback path).

Runtime: about 7,500 steps of each environment; Gymnasium's runs at ~60-150
steps/s, so roughly 1.5-2.5 minutes on one core (plus a one-off Numba compile
of envs.car_racing_raster, cached in ``__pycache__``).
"""

from __future__ import annotations

import math
import os
import pickle
import struct
import warnings
from contextlib import contextmanager

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless: no window
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import numpy as np
import pygame
import pytest
from gymnasium.envs.box2d.car_dynamics import Car
from gymnasium.envs.box2d.car_racing import CarRacing

import envs.car_racing_audit as audit
from envs import box2d_memory
import envs.car_racing_state as state
import envs.fast_car_racing as fcr
from envs.car_physics import FastCar, _axes, _sign
from envs.fast_car_racing import FastCarRacing


def _assert_fast_path(env: FastCarRacing) -> None:
    # Without this, a fallback to the inherited drawing would pass trivially.
    assert env._audited, (
        "FastCarRacing fell back to Gymnasium's drawing; see "
        "test_reference_is_the_audited_version"
    )


def _assert_same_step(step_ref, step_fast, where: str) -> None:
    obs_ref, reward_ref, term_ref, trunc_ref, info_ref = step_ref
    obs_fast, reward_fast, term_fast, trunc_fast, info_fast = step_fast
    if not np.array_equal(obs_ref, obs_fast):
        diff = np.argwhere(obs_ref != obs_fast)
        pytest.fail(f"observation differs at {where}: {len(diff)} values, first {diff[:3].tolist()}")
    assert obs_ref.dtype == obs_fast.dtype and obs_ref.shape == obs_fast.shape, where
    assert reward_ref == reward_fast, f"reward differs at {where}"
    assert term_ref == term_fast, f"terminated differs at {where}"
    assert trunc_ref == trunc_fast, f"truncated differs at {where}"
    assert info_ref == info_fast, f"info differs at {where}"


def _car_state(env) -> list:
    """Everything the car's dynamics write or Box2D makes of it, each float as its 8 bytes
    (so -0.0 differs from 0.0 and NaN equals NaN): hull and wheels' poses and velocities,
    each wheel's controls, speed, phase, motor speed and skid marks, the particles."""
    car = env.car
    values = [car.fuel_spent, car.hull.angle, car.hull.angularVelocity, *car.hull.position, *car.hull.linearVelocity]
    marks = []
    for w in car.wheels:
        values += [w.omega, w.gas, w.brake, w.steer, w.phase, w.joint.motorSpeed, w.joint.angle, w.angle,
                   *w.position, *w.linearVelocity]
        marks.append(None if w.skid_start is None else tuple(w.skid_start))
        marks.append(None if w.skid_particle is None else len(w.skid_particle.poly))
    particles = [(p.color, p.grass, [tuple(xy) for xy in p.poly]) for p in car.particles]
    return [struct.pack("<d", float(v)) for v in values] + [marks, repr(particles)]


def _assert_same_car(ref, fast, where: str) -> None:
    if _car_state(ref) != _car_state(fast):
        pytest.fail(f"car state differs at {where}")


@contextmanager
def _env_pair(**env_kwargs):
    """Gymnasium's CarRacing and FastCarRacing built alike, both closed afterwards."""
    ref, fast = CarRacing(**env_kwargs), FastCarRacing(**env_kwargs)
    try:
        yield ref, fast
    finally:
        fast.close()
        ref.close()


def _run_side_by_side(policy, seed: int, steps: int, **env_kwargs) -> dict:
    """Step both envs with ``policy(ref_env, rng)``; reset with a new seed on termination."""
    rng = np.random.default_rng(seed)
    stats = {"episodes": 1, "tiles": 0, "lap_finished": False, "return": 0.0}
    with _env_pair(**env_kwargs) as (ref, fast):
        _assert_fast_path(fast)
        obs_ref, info_ref = ref.reset(seed=seed)
        obs_fast, info_fast = fast.reset(seed=seed)
        assert type(fast.car) is FastCar and type(ref.car) is Car
        assert np.array_equal(obs_ref, obs_fast) and info_ref == info_fast
        for t in range(steps):
            action = policy(ref, rng)
            step_ref, step_fast = ref.step(action), fast.step(action)
            _assert_same_step(step_ref, step_fast, f"seed {seed}, step {t}")
            _assert_same_car(ref, fast, f"seed {seed}, step {t}")
            stats["return"] += step_ref[1]
            stats["tiles"] = max(stats["tiles"], ref.tile_visited_count)
            if step_ref[2] or step_ref[3]:
                stats["lap_finished"] |= bool(step_ref[4].get("lap_finished"))
                new_seed = seed + 1000 * stats["episodes"]
                stats["episodes"] += 1
                obs_ref, _ = ref.reset(seed=new_seed)
                obs_fast, _ = fast.reset(seed=new_seed)
                assert np.array_equal(obs_ref, obs_fast), f"reset obs, seed {new_seed}"
    return stats


def _random_continuous(env, rng):
    # Uniform steering and gas; the brake only sometimes, so the car covers
    # ground (uniform braking keeps it nearly still and the frames dull).
    brake = 0.8 if rng.uniform() < 0.1 else 0.0
    return np.array([rng.uniform(-1, 1), rng.uniform(0, 1), brake], dtype=np.float32)


def _random_discrete(env, rng):
    # Actions: 0 nothing, 1 right, 2 left, 3 gas, 4 brake; favour gas.
    return int(rng.choice(5, p=[0.15, 0.2, 0.2, 0.4, 0.05]))


def _lap_controller(env, rng):
    """Pure pursuit along the track centre line at a moderate speed."""
    x, y = env.car.hull.position
    track = np.array([(t[2], t[3]) for t in env.track])
    nearest = int(np.argmin((track[:, 0] - x) ** 2 + (track[:, 1] - y) ** 2))
    target_x, target_y = track[(nearest + 6) % len(track)]
    heading = env.car.hull.angle + math.pi / 2
    error = (math.atan2(target_y - y, target_x - x) - heading + math.pi) % (2 * math.pi) - math.pi
    speed = math.hypot(*env.car.hull.linearVelocity)
    steer = float(np.clip(-2.0 * error, -1.0, 1.0))
    gas = 0.5 if speed < 45.0 else 0.0
    brake = 0.3 if speed > 60.0 else 0.0
    return np.array([steer, gas, brake], dtype=np.float32)


def test_reference_is_the_audited_version():
    fingerprint = audit.reference_fingerprint()
    assert fingerprint == audit.REFERENCE_FINGERPRINT, (
        "The installed gymnasium's CarRacing drawing code is not the version "
        "FastCarRacing reproduces, so training falls back to gymnasium's own "
        "CarRacing. Audit envs/fast_car_racing.py and envs/car_racing_scene.py against the new code, make "
        "the equality tests pass, then set REFERENCE_FINGERPRINT = "
        f"{fingerprint!r}."
    )
    assert audit.fast_car_racing_available()
    assert fcr.car_racing_class() is FastCarRacing
    assert fcr.car_racing_class(exact_env=True) is CarRacing


def test_vectorised_rotation_matches_pygame():
    assert audit._rotation_matches_pygame(samples=5000)


def test_float32_car_transform_matches_box2d():
    assert audit._box2d_transform_matches(samples=5000)


def test_state_frames_use_the_raster(monkeypatch, sse2_smoothscale):
    # Every state frame, the start zoom included, comes from
    # envs.car_racing_raster: the pygame drawing is never reached.
    assert audit.raster_available()

    def no_pygame_drawing(*args):
        raise AssertionError("a state frame fell back to pygame drawing")

    monkeypatch.setattr(FastCarRacing, "_render_road", no_pygame_drawing)
    env = FastCarRacing()
    rng = np.random.default_rng(10)
    try:
        env.reset(seed=10)
        for _ in range(120):
            env.step(_random_continuous(env, rng))
    finally:
        env.close()


def test_score_text_pixels_kept_one_byte_a_pixel_and_bounded(monkeypatch):
    # Whatever answers (a fresh blit, the last answer, the cache, the cache after it
    # overflowed and cleared, another env of the process), a score text's pixels are
    # what a fresh computation gives.
    texts = [f"{v:04.0f}" for v in (-12, 0, 7, 15, 99, 123, 880, 901)]
    envs = [FastCarRacing(), FastCarRacing()]
    try:
        for env in envs:
            env.reset(seed=0)
        fresh = {}
        for text in texts:
            monkeypatch.setattr(fcr, "_TEXT_PIXELS", fcr._TextPixels(1 << 20))
            envs[0]._last_text = (None, None)
            fresh[text] = envs[0]._text_pixels(text)
        cache = fcr._TextPixels(3 * 5000)  # about three grey texts
        monkeypatch.setattr(fcr, "_TEXT_PIXELS", cache)
        for n, text in enumerate(texts + texts[::-1] + texts):
            pixels, x, y = envs[n % 2]._text_pixels(text)
            assert pixels.dtype == np.uint32 and (x, y) == fresh[text][1:]
            np.testing.assert_array_equal(pixels, fresh[text][0])
            assert cache.nbytes <= cache.limit
            stored = next(entry for key, entry in cache.entries.items() if key[-1] == text)
            assert stored[0].dtype == np.uint8  # white on black: grey, one byte a pixel
        assert len(cache.entries) < len(texts)  # it did overflow
    finally:
        for env in envs:
            env.close()


def test_text_pixel_cache_keeps_colour_and_refusals():
    cache = fcr._TextPixels(1 << 20)
    colour = np.array([[0x102030, 0x0A0A0A], [0, 0xFFFFFF]], np.uint32)
    cache.put("colour", (colour, 3, 4))
    cache.put("refused", None)
    found, (pixels, x, y) = cache.get("colour")
    assert found and pixels.dtype == np.uint32 and (x, y) == (3, 4)
    np.testing.assert_array_equal(pixels, colour)
    assert cache.get("refused") == (True, None) and cache.get("unseen") == (False, None)
    assert cache.nbytes == colour.nbytes + 2 * 128


def test_pygame_drawing_when_pygame_differs(monkeypatch):
    # Another pygame: state frames are drawn by pygame itself, still identical.
    monkeypatch.setattr(audit, "AUDITED_PYGAME", "0.0.0")
    monkeypatch.setattr(audit, "_raster_availability", None)
    with pytest.warns(RuntimeWarning, match="draws its frames with pygame"):
        assert not audit.raster_available()
    _run_side_by_side(_random_continuous, 11, 60)


def test_pygame_drawing_for_another_smoothscale_backend(sse2_smoothscale):
    # The raster reproduces the SSE2 shrink; with another backend selected
    # (both environments use it), frames are drawn and shrunk by pygame.
    pygame.transform.set_smoothscale_backend("GENERIC")
    try:
        _run_side_by_side(_random_continuous, 12, 60)
    finally:
        pygame.transform.set_smoothscale_backend("SSE2")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identical_with_random_actions(seed):
    stats = _run_side_by_side(_random_continuous, seed, 1000)
    assert stats["tiles"] > 5  # the car really drove over the track


@pytest.mark.slow
def test_identical_with_gymnasium_action_samples():
    # Uniform samples from the action space, the canonical random policy.
    def sample(env, rng):
        return rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)

    _run_side_by_side(sample, 3, 500)


def _edge_controls(env, rng):
    # The car code's branches and limits: gas outside [0, 1] and at its ends, brakes on
    # either side of the 0.9 lock, steering at +-0.0, +-1 and beyond; often a sharp turn at
    # speed, which skids and leaves marks.
    steer = rng.choice([rng.uniform(-1, 1), 0.0, -0.0, 1.0, -1.0, 1.7, -3.0])
    gas = rng.choice([rng.uniform(0, 1), 0.0, -0.0, 1.0, 1.3, -0.4, 0.05])
    brake = rng.choice([0.0, 0.0, 0.0, 0.0, rng.uniform(0, 0.9), 0.9, 0.95, 1.0, 0.8999999])
    return np.array([steer, gas, brake], dtype=rng.choice([np.float32, np.float64]))


def test_identical_car_at_the_dynamics_edges():
    stats = _run_side_by_side(_edge_controls, 21, 500)
    assert stats["tiles"] > 3


def test_tiles_paint_into_one_colour_array():
    with _env_pair() as (ref, fast):
        ref.reset(seed=8)
        fast.reset(seed=8)
        rgb = fast._road_rgb
        assert all(np.shares_memory(tile.color, rgb) for tile in fast.road)
        assert all(color is tile.color for (_, color), tile in zip(
            [entry for entry in fast.road_poly if isinstance(entry[1], np.ndarray)], fast.road))
        assert np.array_equal(rgb, np.array([color for _, color in ref.road_poly], dtype=np.float64))
        for t in range(60):  # drive onto the track: the listener repaints tiles
            action = np.array([0.0, 0.6, 0.0], dtype=np.float32)
            _assert_same_step(ref.step(action), fast.step(action), f"step {t}")
        assert np.array_equal(rgb, np.array([color for _, color in ref.road_poly], dtype=np.float64))
        assert fast.tile_visited_count > 0 and fast._road_rgb is rgb
        # Layouts whose colours the array could not follow are refused (drawn by pygame):
        # two entries holding one array, and an array that no tile holds.
        shared = list(fast.road_poly)
        shared[1] = (shared[1][0], shared[0][1])
        foreign = list(fast.road_poly)
        foreign[0] = (foreign[0][0], np.array([1.0, 2.0, 3.0]))
        assert fast._share_road_colors(shared) is None and fast._share_road_colors(foreign) is None


def test_sign_and_gas_clip_are_numpys():
    specials = [0.0, -0.0, 1e-300, -1e-300, 0.5, -2.0, 1.0, 1.0000001, math.inf, -math.inf, math.nan]
    for x in specials + [np.float64(x) for x in specials]:
        assert struct.pack("<d", _sign(x)) == struct.pack("<d", np.sign(x)), x
    throttles_ref, throttles_fast = [], []
    for gas in specials + [np.float64(x) for x in specials] + [np.float32(0.3), np.float32(-0.0), True, 2]:
        for throttles, cls in ((throttles_ref, Car), (throttles_fast, FastCar)):
            car = cls.__new__(cls)  # gas() only touches wheels' throttles: no Box2D world needed
            car.wheels = [type("Wheel", (), {"gas": 0.0})() for _ in range(4)]
            car.gas(gas)
            car.gas(gas)
            throttles.append([struct.pack("<d", float(w.gas)) for w in car.wheels])
    assert throttles_ref == throttles_fast


def test_wheel_axes_are_box2ds_world_vectors():
    """_axes gives GetWorldVector's numbers bit for bit: on a real wheel turned to angles
    whose sine or cosine is a (signed) zero or one, and to random ones."""
    env = FastCarRacing()
    env.reset(seed=0)
    wheel = env.car.wheels[0]
    angles = [0.0, -0.0, math.pi / 2, -math.pi / 2, math.pi, -math.pi, 2 * math.pi, 1e-30, -1e-30]
    angles += list(np.random.default_rng(0).uniform(-10, 10, 200))
    bits = lambda values: [struct.pack("<d", float(v)) for v in values]  # noqa: E731
    for angle in angles:
        wheel.angle = angle
        rot = wheel.transform.q
        forw, side = wheel.GetWorldVector((0, 1)), wheel.GetWorldVector((1, 0))
        assert bits(_axes(rot.c, rot.s)) == bits((forw.x, forw.y, side.x, side.y)), angle
    env.close()


def test_identical_with_bodies_read_through_pybox2d(monkeypatch):
    # Where Box2D's memory layout is not the one envs.box2d_memory reads, the car is read
    # through pybox2d: the same frames and the same car.
    monkeypatch.setattr(box2d_memory, "_readable", False)
    with _env_pair() as (_, fast):
        fast.reset(seed=0)
        assert fast.car.memory() is None and fast._car_description()[2].shape == (0,)
    _run_side_by_side(_random_continuous, 4, 300)


@pytest.mark.slow
def test_identical_discrete():
    stats = _run_side_by_side(_random_discrete, 4, 1000, continuous=False)
    assert stats["tiles"] > 5


@pytest.mark.slow
def test_identical_scripted_lap():
    # Seed 7's lap takes ~1,200 steps with this controller; not capped.
    stats = _run_side_by_side(_lap_controller, 7, 1300)
    assert stats["lap_finished"], stats


def test_identical_domain_randomize_and_reset_options():
    rng = np.random.default_rng(5)
    with _env_pair(domain_randomize=True) as (ref, fast):
        for episode, options in enumerate([None, {"randomize": False}, {"randomize": True}]):
            obs_ref, _ = ref.reset(seed=50 + episode, options=options)
            obs_fast, _ = fast.reset(seed=50 + episode, options=options)
            assert np.array_equal(obs_ref, obs_fast)
            for t in range(80):
                action = _random_continuous(ref, rng)
                _assert_same_step(ref.step(action), fast.step(action), f"ep {episode} step {t}")


def test_identical_rgb_array_render():
    rng = np.random.default_rng(6)
    with _env_pair(render_mode="rgb_array") as (ref, fast):
        ref.reset(seed=6)
        fast.reset(seed=6)
        for t in range(120):
            action = _random_continuous(ref, rng)
            _assert_same_step(ref.step(action), fast.step(action), f"step {t}")
            if t % 10 == 0:  # the video frame, particles included
                frame_ref, frame_fast = ref.render(), fast.render()
                assert frame_ref.shape == (400, 600, 3)
                assert np.array_equal(frame_ref, frame_fast), f"rgb_array frame at step {t}"


def test_human_render_mode_runs_headless():
    # Only checkable with SDL's dummy video driver here: the window is not
    # shown, but the display path (set_mode, blit, flip) runs.
    rng = np.random.default_rng(8)
    with _env_pair(render_mode="human") as (ref, fast):
        ref.reset(seed=8)
        fast.reset(seed=8)
        for t in range(20):
            action = _random_continuous(ref, rng)
            _assert_same_step(ref.step(action), fast.step(action), f"step {t}")
        assert fast.screen is not None


def test_indicator_panel_covers_the_culled_rows():
    # FastCarRacing skips road polygons that lie only in the canvas rows the
    # indicator panel paints over after the flip. Check that those rows come
    # out the same whatever was underneath, i.e. are entirely overwritten.
    env = CarRacing()
    env.reset(seed=0)
    for _ in range(60):  # moving, steering: indicator bars are drawn too
        env.step(np.array([0.5, 1.0, 0.0], dtype=np.float32))
    panels = []
    try:
        for background in [(255, 255, 255), (1, 2, 3)]:
            env.surf = pygame.Surface((fcr.WINDOW_W, fcr.WINDOW_H))
            env.surf.fill(background)
            env._render_indicators(fcr.WINDOW_W, fcr.WINDOW_H)
            pixels = pygame.surfarray.array3d(env.surf)  # (x, y, rgb)
            panels.append(pixels[:, fcr.WINDOW_H - state._PANEL_ROWS :, :])
    finally:
        env.close()
    assert panels[0].shape[1] == state._PANEL_ROWS
    assert np.array_equal(panels[0], panels[1])


def _keeps_a_pixel(x, y):
    """The cull's test for one polygon's pixel vertices, written out: a vertex inside the
    canvas grown by MAX_SHAPE_DIM (the reference's own test) and a box reaching the kept area."""
    grown = state.MAX_SHAPE_DIM
    inside = any(-grown <= vx <= fcr.WINDOW_W + grown and -grown <= vy <= fcr.WINDOW_H + grown
                 for vx, vy in zip(x, y))
    margin = state._CULL_MARGIN
    return inside and (max(x) >= -margin and min(x) <= fcr.WINDOW_W - 1 + margin
                       and max(y) >= state._PANEL_ROWS - margin and min(y) <= fcr.WINDOW_H - 1 + margin)


@pytest.mark.parametrize("seed", [0, 1])
def test_cull_keeps_exactly_the_polygons_whose_vertices_reach_the_view(seed):
    # The cull skips polygons by their centre and radius before placing their vertices;
    # against placing every polygon (pygame's own Vector2 arithmetic) and testing it,
    # it must keep the same polygons, with the same pixel vertices, for any view.
    env = FastCarRacing()
    env.reset(seed=seed)
    poly_x, poly_y, centre_x, centre_y, radius = env._polygon_arrays()
    env.close()
    rng = np.random.default_rng(seed)
    for _ in range(12):
        zoom = float(rng.choice([0.6, 2.0, 16.2, rng.uniform(0.5, 20.0)]))
        angle = float(rng.choice([0.0, math.pi / 2, rng.uniform(-7.0, 7.0)]))
        centre = rng.uniform(-250.0, 250.0, size=2)  # world point shown at (W/2, H/4)
        shift = pygame.math.Vector2(tuple(-centre * zoom)).rotate_rad(angle)
        translation = (fcr.WINDOW_W / 2 + shift[0], fcr.WINDOW_H / 4 + shift[1])
        kept, px, py = state._cull(poly_x, poly_y, centre_x, centre_y, radius, *fcr._view(angle, zoom, translation))
        want, want_x, want_y = [], [], []
        for i in range(poly_x.shape[0]):
            vertices = [pygame.math.Vector2((float(a), float(b))).rotate_rad(angle) for a, b in zip(poly_x[i], poly_y[i])]
            x = [v[0] * zoom + translation[0] for v in vertices]
            y = [v[1] * zoom + translation[1] for v in vertices]
            if _keeps_a_pixel(x, y):
                want.append(i)
                want_x.append(x)
                want_y.append(y)
        assert kept.tolist() == want, (zoom, angle, centre)
        assert px.tolist() == want_x and py.tolist() == want_y


def test_road_colours_pack_as_the_reference_truncates_them():
    # The reference hands gfxdraw [int(c) for c in color]; for 0..255 pygame's 32-bit
    # XRGB pixel is plain packing. Anything else must send the frame to pygame (empty).
    rng = np.random.default_rng(3)
    rgb = np.concatenate([rng.uniform(0.0, 256.0, size=(40, 3)), [[0.0, 255.999, 102.0], [255.0, 0.5, 1e-300], [-0.5, -1e-9, 7.0]]])
    packed = state._pack_road_colors(0x123456, 0x66E666, 5, rgb)
    want = [0x123456] + [0x66E666] * 5 + [(int(r) << 16) | (int(g) << 8) | int(b) for r, g, b in rgb.tolist()]
    assert packed.tolist() == want
    for bad in (256.0, -1.0, -3.5, np.nan, np.inf):
        odd = rgb.copy()
        odd[7, 1] = bad
        assert state._pack_road_colors(0, 0, 2, odd).shape == (0,)
    assert state._pack_road_colors(7, 9, 1, np.empty((0, 3))).tolist() == [7, 9]


def test_fallback_when_gymnasium_changes(monkeypatch):
    monkeypatch.setattr(audit, "REFERENCE_FINGERPRINT", "0" * 64)
    monkeypatch.setattr(audit, "_availability", None)
    with pytest.warns(RuntimeWarning, match="FastCarRacing disabled"):
        assert not audit.fast_car_racing_available()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not on every call
        assert fcr.car_racing_class() is CarRacing
        env = FastCarRacing()  # constructed anyway: draws and drives like the reference
    assert not env._audited
    ref = CarRacing()
    try:
        assert np.array_equal(env.reset(seed=9)[0], ref.reset(seed=9)[0])
        assert type(env.car) is Car
    finally:
        env.close()
        ref.close()


def test_pickles_with_its_constructor_arguments():
    env = FastCarRacing(continuous=False, lap_complete_percent=0.5)
    clone = pickle.loads(pickle.dumps(env))
    try:
        assert type(clone) is FastCarRacing
        assert clone.continuous is False and clone.lap_complete_percent == 0.5
        assert np.array_equal(env.reset(seed=3)[0], clone.reset(seed=3)[0])
    finally:
        env.close()
        clone.close()
