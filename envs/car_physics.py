"""Gymnasium's car dynamics with plain float arithmetic: the same numbers, twice as fast.

``gymnasium.envs.box2d.car_dynamics.Car.step`` runs once per env step and spends about half
of its ~85-95 us on NumPy calls with one scalar each (``np.sign``, ``np.sqrt``,
``np.square``) and on the NumPy scalars they return; ``Car.gas`` calls ``np.clip``, ~8 us
alone. :class:`FastCar` computes the same operations, in the same order, on Python floats
(``Car.step`` 84-96 -> 44-48 us; the rest is Box2D's SWIG calls):

* ``np.square(x)`` is ``x * x`` and ``np.sqrt`` is IEEE 754's correctly rounded square
  root, as ``math.sqrt`` is; NumPy's float64 scalars and Python floats are both IEEE
  754 doubles rounded to nearest, so every sum, product and quotient is the same bit for
  bit. Neither operation here can divide by zero or overflow into an exception (Python
  raises only for ``x / 0`` and ``**``; ``abs(omega) + 5`` and a force larger than a
  positive friction limit are never 0), and NaN propagates the same way.
* :func:`_sign` returns what ``np.sign`` does for a float: -1.0, 1.0, +0.0 for either
  zero, and NaN for NaN.
* ``Car.gas``' ``np.clip(gas, 0, 1)`` becomes two comparisons: NaN and values inside
  pass through unchanged, as they do through ``np.clip``.
* Box2D is written through the same calls as the reference, in the same order, so the
  world sees the same motor speeds and forces. Reads change nothing and are fewer: the
  joint angle once instead of twice, and a wheel's forward and sideways vectors computed
  from its rotation, exactly (see ``_axes``), instead of two ``GetWorldVector`` calls; the
  rotation and velocity come from the wheel's memory (:mod:`envs.box2d_memory`, the same
  floats without SWIG's proxy objects) where its layout checks out.

The values stored on the wheels are Python floats where the reference leaves NumPy
float64 scalars; their values are the same. ``tests/test_fast_car_racing.py`` drives the
reference and this class side by side and compares every wheel's and the hull's state,
bit for bit, after every step. :mod:`envs.car_racing_audit` fingerprints ``Car.step`` and
``Car.gas`` with the drawing code, so a Gymnasium release that changes them turns
FastCarRacing off rather than simulating an older car.
"""

from __future__ import annotations

import math

from gymnasium.envs.box2d import car_dynamics as _reference
from gymnasium.envs.box2d.car_dynamics import Car

from envs import box2d_memory

__all__ = ["FastCar"]

_ENGINE_POWER = _reference.ENGINE_POWER
_WHEEL_MOMENT_OF_INERTIA = _reference.WHEEL_MOMENT_OF_INERTIA
_FRICTION_LIMIT = _reference.FRICTION_LIMIT
_GRASS_FRICTION_LIMIT = _FRICTION_LIMIT * 0.6
# The reference multiplies by `205000 * SIZE * SIZE`, evaluated left to right: the same double.
_SLIP_GAIN = 205000 * _reference.SIZE * _reference.SIZE
_BRAKE_FORCE = 15  # radians per second, as in the reference
_UNSET = object()


def _axes(c, s):
    """A body's forward and sideways unit vectors, ``(forw_x, forw_y, side_x, side_y)``,
    from its rotation's cosine and sine (float32 values): what Box2D's
    ``GetWorldVector((0, 1))`` and ``((1, 0))`` return, ``(c*x - s*y, s*x + c*y)`` in
    float32. With x, y in {0, 1} every product is exact and every sum adds a signed zero,
    so these doubles are the same numbers, signed zeros included: one read of the rotation
    instead of two calls and four reads (~1 us a wheel)."""
    return c * 0.0 - s * 1.0, s * 0.0 + c * 1.0, c * 1.0 - s * 0.0, s * 1.0 + c * 0.0


def _sign(x):
    """``np.sign`` of a float: -1.0, 1.0, +0.0 for +-0.0, NaN for NaN."""
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return 0.0 if x == 0 else x


class FastCar(Car):
    """``Car`` whose ``gas`` and ``step`` avoid NumPy scalars (see the module docstring).

    FastCarRacing switches the car the reference's ``reset`` built to this class; nothing
    else about the car changes (bodies, joints, drawing, particles are the reference's).

    The controls arrive as NumPy scalars (``CarRacing.step`` takes them from
    ``action.astype(np.float64)``); stored on the wheels as they are, they made every
    sum in ``step`` a NumPy scalar operation again. They are stored as Python floats,
    the same doubles (``float`` of a float64 is exact): ``step`` 5-7 us faster (timed
    against the unconverted controls in one process, random driving).
    """

    def memory(self):
        """The wheels' then the hull's :func:`envs.box2d_memory.memory` views, or None where
        bodies are read through pybox2d; made on first use (a car's bodies live as long as it)."""
        views = self.__dict__.get("_views", _UNSET)
        if views is _UNSET:
            views = [box2d_memory.memory(body) for body in (*self.wheels, self.hull)]
            self._views = views = None if None in views else views
        return views

    def destroy(self):
        """The reference's ``destroy``; the bodies' memory is gone, so their views are dropped."""
        super().destroy()
        self._views = None

    def steer(self, s):
        """The front wheels' steering target, -1..1 (the reference's ``steer``, given a float)."""
        super().steer(float(s))

    def brake(self, b):
        """The brake, 0..1 (the reference's ``brake``, given a float)."""
        super().brake(float(b))

    def gas(self, gas):
        """Rear-wheel drive: the throttle moves towards ``gas`` clipped to [0, 1], by at most 0.1 a step."""
        gas = float(gas)
        if gas < 0:
            gas = 0.0
        elif gas > 1:
            gas = 1.0
        for w in self.wheels[2:4]:
            diff = gas - w.gas
            if diff > 0.1:
                diff = 0.1  # gradually increase, but stop immediately
            w.gas += diff

    def step(self, dt):
        """Apply each wheel's steering motor, engine, brake and tyre friction for ``dt`` seconds."""
        views = self.memory()
        for i, w in enumerate(self.wheels):
            # Steering: the joint's motor turns the wheel towards w.steer at up to 3 rad/s.
            error = w.steer - w.joint.angle
            w.joint.motorSpeed = _sign(error) * min(50.0 * abs(error), 3.0)

            # Friction limit: the best tile under the wheel, else grass.
            grass = True
            friction_limit = _GRASS_FRICTION_LIMIT
            for tile in w.tiles:
                friction_limit = max(friction_limit, _FRICTION_LIMIT * tile.road_friction)
                grass = False

            if views is None:
                rot, v = w.transform.q, w.linearVelocity
                sin, cos, v_x, v_y = rot.s, rot.c, v.x, v.y
            else:  # the same floats, without four SWIG proxies
                sin, cos, v_x, v_y = box2d_memory.rotation_velocity(views[i])
            forw_x, forw_y, side_x, side_y = _axes(cos, sin)
            vf = forw_x * v_x + forw_y * v_y  # forward speed
            vs = side_x * v_x + side_y * v_y  # side speed

            # Engine power into wheel speed (+5 keeps the division finite at rest).
            w.omega += dt * _ENGINE_POWER * w.gas / _WHEEL_MOMENT_OF_INERTIA / (abs(w.omega) + 5.0)
            self.fuel_spent += dt * _ENGINE_POWER * w.gas

            if w.brake >= 0.9:
                w.omega = 0
            elif w.brake > 0:
                direction = -_sign(w.omega)
                val = _BRAKE_FORCE * w.brake
                if abs(val) > abs(w.omega):
                    val = abs(w.omega)  # low speed => same as = 0
                w.omega += direction * val
            w.phase += w.omega * dt

            vr = w.omega * w.wheel_rad  # rotating wheel speed
            f_force = -vf + vr  # along the speed difference
            p_force = -vs
            f_force *= _SLIP_GAIN
            p_force *= _SLIP_GAIN
            force = math.sqrt(f_force * f_force + p_force * p_force)

            # Skid marks: the reference's bookkeeping, unchanged.
            if abs(force) > 2.0 * friction_limit:
                if w.skid_particle and w.skid_particle.grass == grass and len(w.skid_particle.poly) < 30:
                    w.skid_particle.poly.append((w.position[0], w.position[1]))
                elif w.skid_start is None:
                    w.skid_start = w.position
                else:
                    w.skid_particle = self._create_particle(w.skid_start, w.position, grass)
                    w.skid_start = None
            else:
                w.skid_start = None
                w.skid_particle = None

            if abs(force) > friction_limit:
                f_force /= force
                p_force /= force
                force = friction_limit
                f_force *= force
                p_force *= force

            w.omega -= dt * f_force * w.wheel_rad / _WHEEL_MOMENT_OF_INERTIA

            w.ApplyForceToCenter(
                (p_force * side_x + f_force * forw_x, p_force * side_y + f_force * forw_y),
                True,
            )
