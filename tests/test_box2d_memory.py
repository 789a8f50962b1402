"""envs.box2d_memory reads what pybox2d's accessors return, bit for bit.

Bodies of a real Box2D world, placed, turned and pushed at random (signed zeros and large
values included), then stepped so that Box2D itself computes their transforms: every read
from memory (Python's struct reads and the compiled one) must equal the SWIG accessors'.
"""

from __future__ import annotations

import math
import struct

import Box2D
import numpy as np
import pytest

from envs import box2d_memory


def _bits(values) -> list[bytes]:
    return [struct.pack("<d", float(v)) for v in values]


def _random_bodies(rng, count: int):
    world = Box2D.b2World(gravity=(0, -9.8))
    bodies = []
    for k in range(count):
        x, y = rng.choice([0.0, -0.0, rng.uniform(-1e4, 1e4), rng.uniform(-3, 3)], size=2)
        angle = float(rng.choice([0.0, -0.0, math.pi / 2, -math.pi, rng.uniform(-50, 50)]))
        body = world.CreateDynamicBody(position=(float(x), float(y)), angle=angle)
        body.CreatePolygonFixture(box=(float(rng.uniform(0.1, 3)), float(rng.uniform(0.1, 3))), density=1.0)
        body.linearVelocity = tuple(float(v) for v in rng.uniform(-80, 80, size=2))
        body.angularVelocity = float(rng.uniform(-20, 20))
        bodies.append(body)
    return world, bodies


def test_layout_is_readable_on_this_box2d():
    # The PyPI wheels of pybox2d 2.3.10 (the dependency) lay b2Body out as read.
    assert box2d_memory.readable()


def test_reads_equal_pybox2ds_accessors():
    rng = np.random.default_rng(5)
    world, bodies = _random_bodies(rng, 24)
    views = [box2d_memory.memory(body) for body in bodies]
    addresses = np.array([box2d_memory.address(body) for body in bodies], np.int64)
    for step in range(4):
        transforms = np.full((len(bodies), 4), np.nan, np.float32)
        box2d_memory._transforms_of(addresses, transforms)
        for body, view, row in zip(bodies, views, transforms.tolist()):
            t, v = body.transform, body.linearVelocity
            assert _bits(box2d_memory.position_angle(view)) == _bits((*body.position, body.angle)), step
            assert _bits(box2d_memory.rotation_velocity(view)) == _bits((t.q.s, t.q.c, v.x, v.y)), step
            assert _bits(box2d_memory.velocity_spin(view)) == _bits((v.x, v.y, body.angularVelocity)), step
            assert _bits(row) == _bits((t.q.c, t.q.s, t.position.x, t.position.y)), step
        world.Step(1 / 50, 6, 2)


def test_views_are_read_only():
    world, bodies = _random_bodies(np.random.default_rng(0), 1)
    view = box2d_memory.memory(bodies[0])
    assert view.readonly and view.nbytes == box2d_memory._SIZE


def test_a_destroyed_car_keeps_no_views():
    # reset() destroys the old car's bodies: its views must not be read again.
    from envs.fast_car_racing import FastCarRacing

    env = FastCarRacing()
    try:
        env.reset(seed=0)
        old = env.car
        assert old.memory() is not None
        env.reset(seed=1)
        assert old.memory() is None and env.car.memory() is not None
    finally:
        env.close()


def test_another_layout_falls_back_to_pybox2d_with_a_warning(monkeypatch):
    # Where the check fails (another Box2D build), nothing is read from memory.
    monkeypatch.setattr(box2d_memory, "_readable", None)
    monkeypatch.setattr(box2d_memory, "_layout_matches", lambda: False)
    with pytest.warns(RuntimeWarning, match="through pybox2d"):
        assert not box2d_memory.readable()
    world, bodies = _random_bodies(np.random.default_rng(1), 1)
    assert box2d_memory.memory(bodies[0]) is None
