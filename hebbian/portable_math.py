"""Float arithmetic that rounds the same on every CPU: a fused multiply-add and a float32 tanh.

Numba compiles for the CPU it runs on and NumPy picks its SIMD loops by CPU, so the same
formula can give different last bits on two nodes of one Ray cluster, and an evolution run
then depends on where its members were evaluated. Everything here is built from IEEE 754
operations that are correctly rounded by definition (add, multiply, divide, fused
multiply-add, float64 -> float32 conversion) plus exact ones (abs, copysign, compare), in a
fixed order with no fast-math, so vector width, instruction set and library never change a
bit, only the speed (`tests/test_determinism_isa.py` compiles both for this CPU and for a
generic x86-64 and compares).
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


def _fused_multiply_add(precision):
    """An intrinsic a * b + c with one rounding for floats of `precision` (types.float32 or
    float64): LLVM's llvm.fma, correctly rounded on every machine, one instruction where
    the CPU has FMA, a correctly rounded library call where it has not."""
    @intrinsic
    def fma(typingctx, a, b, c):
        if not (a == b == c == precision):
            return None
        sig = precision(precision, precision, precision)

        def codegen(context, builder, signature, args):
            kind = context.get_value_type(precision)
            fn = builder.module.declare_intrinsic("llvm.fma", [kind], ir.FunctionType(kind, [kind] * 3))
            return builder.call(fn, args)

        return sig, codegen

    return fma


fma32 = _fused_multiply_add(types.float32)
fma64 = _fused_multiply_add(types.float64)


# tanh(x) = x * P(x^2) / Q(x^2) for |x| <= 9, evaluated in float64 and rounded to float32 once.
# P (degree 5) and Q (degree 4, Q(0) = 1) were fitted to tanh(x) / x on [0, 9] for the
# smallest largest relative error: a linear least-squares fit of P - (tanh(x) / x) Q,
# reweighted by each point's error and refitted (Lawson's iteration, 60 rounds, 12,000
# Chebyshev and uniform points). Their largest relative error there is 1.3e-9, ~50x below
# float32's half-unit in the last place, so with the float64 evaluation the result is within
# 0.53 units in the last place of the exact tanh (checked on every fifth positive float32 up
# to 9.5 when fitted; tests/test_portable_math.py checks every 61st): the correctly rounded
# value, up to rare near-ties.
# P and Q are evaluated by Horner's rule with fused multiply-adds. First they were evaluated
# with a multiply and an add per step (the committed runs were scored with that): the float64
# results differ for ~1% of inputs, by an ulp of float64, and for no float32 input does the
# float32 result (checked for every float32 in [0, 9.5], tests/test_portable_math.py), so
# the function is the same, ~0.82x the time (9,622 values: ~9.5 -> ~7.8 us).
# Beyond 9, float32 tanh is 1 (within half a unit); inf gives 1, NaN stays NaN, the sign of
# zero is kept.
_TANH_P = (0.9999999987280662, 0.136808474567676, 0.0038694968657855154, 2.803109497829427e-05,
           3.064204244430328e-08, -1.2245913780614051e-11)
_TANH_Q = (1.0, 0.4701417954749711, 0.02725011554360029, 0.00039406940645193963, 1.2890204664414469e-06)
_TANH_SATURATES = 9.0


@njit(inline="always", error_model="numpy")
def tanh32(x):
    """tanh of a float32 (or any float) as float32, the same bits on every CPU (see above)."""
    v = np.float64(x)
    a = abs(v)
    t = a * a
    p, q = _TANH_P, _TANH_Q
    num = fma64(fma64(fma64(fma64(fma64(p[5], t, p[4]), t, p[3]), t, p[2]), t, p[1]), t, p[0])
    den = fma64(fma64(fma64(fma64(q[4], t, q[3]), t, q[2]), t, q[1]), t, q[0])
    y = a * num / den if a <= _TANH_SATURATES else 1.0
    y = math.copysign(y, v)
    return np.float32(y if v == v else v)


@njit(nogil=True, cache=True, error_model="numpy")
def tanh32_inplace(a):
    """a = tanh(a) for a float32 array (1-D), vectorised by LLVM (no division check: numpy's
    error model), ~2 ns an element on one AVX2 core against ~4 for NumPy's scalar float32 tanh there."""
    for i in range(a.shape[0]):
        a[i] = tanh32(a[i])


def tanh32_array(y) -> np.ndarray:
    """tanh of an array, as a new float32 array of its shape (see tanh32)."""
    out = np.array(y, dtype=np.float32, order="C")
    tanh32_inplace(out.reshape(-1))
    return out
