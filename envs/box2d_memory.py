"""Box2D bodies' position, rotation and velocity read from the bodies' memory, checked once.

Every pybox2d attribute read is a SWIG call that builds a proxy object: a body's
``transform`` takes ~0.5 us, its ``q`` another ~0.2 us, each float ~0.1 us. FastCarRacing
reads its car's five bodies every step, to steer and to draw (~15 us of Python a step).
The numbers are float32 fields at fixed places in Box2D's ``b2Body``, which starts (Box2D
2.3, as pybox2d builds it)::

    byte  0  int32 m_type, uint16 m_flags, int32 m_islandIndex
         12  b2Transform m_xf: p.x, p.y, q.s, q.c
         28  b2Sweep m_sweep: localCenter, c0, c (2 floats each), a0, a, alpha0
         64  b2Vec2 m_linearVelocity
         72  float32 m_angularVelocity

so they are read from there instead: a struct unpack from Python (~0.1 us for four floats)
or a load in compiled code. Float32 to Python float is exact, so these are the very numbers
SWIG's accessors return (``b2Body::GetPosition`` is ``m_xf.p``, ``GetAngle`` is
``m_sweep.a``).

:func:`readable` checks the layout once per process: it builds bodies with distinct values
in a scratch world and compares every field with pybox2d's accessors. Where they differ (a
Box2D built otherwise), :func:`memory` returns None and callers read through pybox2d, as
before (the same numbers, slower). A view is only read while its body exists: FastCar keeps
its bodies' views and drops them when it is destroyed (``reset`` destroys the old car).
"""

from __future__ import annotations

import ctypes
import struct
import warnings

import Box2D
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["address", "body_transforms", "memory", "position_angle", "readable", "rotation_velocity",
           "velocity_spin"]

_SIZE = 76  # bytes up to and with m_angularVelocity
_TRANSFORM = 12  # byte offset of m_xf
_VELOCITY = 64  # byte offset of m_linearVelocity
_POSITION_ANGLE = struct.Struct("=2f36xf")  # at 12: p.x, p.y; the sweep's angle (byte 56)
_ROTATION_VELOCITY = struct.Struct("=2f36x2f")  # at 20: q.s, q.c; the velocity (byte 64)
_VELOCITY_SPIN = struct.Struct("=3f")  # at 64: the linear velocity; the angular velocity
_EVERYTHING = struct.Struct("=4f28xf4x3f")  # at 12: p, q; sweep.a; velocity, spin


def address(body) -> int:
    """The ``b2Body*`` a pybox2d body wraps."""
    return int(body.this)


def memory(body) -> memoryview | None:
    """A read-only view of ``body``'s first bytes (see the module docstring), or None where
    the layout is not the one checked (:func:`readable`)."""
    return _view(body) if readable() else None


def _view(body) -> memoryview:
    return memoryview((ctypes.c_char * _SIZE).from_address(address(body))).toreadonly()


def position_angle(view) -> tuple[float, float, float]:
    """``(x, y, angle)``: the body's ``position`` and ``angle`` from its :func:`memory`."""
    return _POSITION_ANGLE.unpack_from(view, _TRANSFORM)


def rotation_velocity(view) -> tuple[float, float, float, float]:
    """``(sin, cos, vx, vy)``: the body's ``transform.q`` and ``linearVelocity`` from its
    :func:`memory`."""
    return _ROTATION_VELOCITY.unpack_from(view, _TRANSFORM + 8)


def velocity_spin(view) -> tuple[float, float, float]:
    """``(vx, vy, spin)``: the body's ``linearVelocity`` and ``angularVelocity`` from its
    :func:`memory`."""
    return _VELOCITY_SPIN.unpack_from(view, _VELOCITY)


@intrinsic
def _float32_at(typingctx, at, offset):
    """The float32 at byte ``at + offset`` (int64 address and offset)."""
    if not (at == types.int64 and offset == types.int64):
        return None

    def codegen(context, builder, signature, args):
        pointer = builder.inttoptr(builder.add(args[0], args[1]), ir.PointerType(ir.FloatType()))
        return builder.load(pointer, align=4)

    return types.float32(at, offset), codegen


@njit(inline="always")
def body_transforms(addresses, transforms):
    """``transforms[b] = (q.c, q.s, p.x, p.y)`` (float32 (B, 4)) of the bodies at
    ``addresses`` (int64 (B,)), as :func:`envs.car_racing_scene.car_polygons` takes them."""
    for b in range(addresses.shape[0]):
        at = addresses[b]
        transforms[b, 0] = _float32_at(at, _TRANSFORM + 12)
        transforms[b, 1] = _float32_at(at, _TRANSFORM + 8)
        transforms[b, 2] = _float32_at(at, _TRANSFORM + 0)
        transforms[b, 3] = _float32_at(at, _TRANSFORM + 4)


@njit(cache=True)
def _transforms_of(addresses, transforms):
    body_transforms(addresses, transforms)


_readable: bool | None = None


def readable() -> bool:
    """Whether bodies' memory holds what pybox2d's accessors read, at the places above.

    Checked once per process on two bodies of a scratch world with distinct, non-zero
    values in every field, through the struct reads and the compiled ones alike. Warns
    once (``RuntimeWarning``) if not.
    """
    global _readable
    if _readable is None:
        try:
            _readable = _layout_matches()
        except (AttributeError, TypeError, ValueError):  # a pybox2d without int(body.this)
            _readable = False
        if not _readable:
            warnings.warn(
                "Box2D bodies are read through pybox2d (the same numbers, slower): this Box2D "
                "lays out b2Body differently from the Box2D 2.3 envs.box2d_memory reads.",
                RuntimeWarning,
                stacklevel=2,
            )
    return _readable


def _layout_matches() -> bool:
    """Every read here against pybox2d's accessors, on two bodies of a scratch world."""
    world = Box2D.b2World(gravity=(0, 0))
    bodies = []
    for k, (x, y, angle) in enumerate([(1.5, -2.25, 0.7), (-30.125, 7.75, -2.5)]):
        body = world.CreateDynamicBody(position=(x, y), angle=angle)
        body.CreatePolygonFixture(box=(1.0 + k, 0.5), density=1.0)
        body.linearVelocity = (3.5 + k, -4.25 * (k + 1))
        body.angularVelocity = 1.25 - 3 * k
        bodies.append(body)
    ok = True
    for body in bodies:
        view = _view(body)
        t, v = body.transform, body.linearVelocity
        want = (t.position.x, t.position.y, t.q.s, t.q.c, body.angle, v.x, v.y, body.angularVelocity)
        ok &= _EVERYTHING.unpack_from(view, _TRANSFORM) == want
        ok &= position_angle(view) == (*body.position, body.angle)
        ok &= rotation_velocity(view) == (t.q.s, t.q.c, v.x, v.y)
        ok &= velocity_spin(view) == (v.x, v.y, body.angularVelocity)
    transforms = np.zeros((len(bodies), 4), np.float32)
    _transforms_of(np.array([address(b) for b in bodies], np.int64), transforms)
    ok &= transforms.tolist() == [[b.transform.q.c, b.transform.q.s, *b.position] for b in bodies]
    return bool(ok)
