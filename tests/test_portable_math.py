"""hebbian.portable_math against independent references: exact rational arithmetic for the
fused multiply-add, float64 tanh for the float32 tanh (every 61st positive float32 up to 9.5)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from numba import njit

from hebbian.portable_math import fma32, tanh32_inplace


@njit(cache=False)
def _fma_all(a, b, c, out):
    for i in range(a.shape[0]):
        out[i] = fma32(a[i], b[i], c[i])


def test_fma32_rounds_once():
    rng = np.random.default_rng(0)
    # Products and addends of similar size, where one rounding and two differ most often.
    a, b = (rng.standard_normal(2000).astype(np.float32) for _ in range(2))
    c = (-(a.astype(np.float64) * b) * (1 + rng.uniform(-1e-6, 1e-6, 2000))).astype(np.float32)
    out = np.empty_like(a)
    _fma_all(a, b, c, out)
    exact = [np.float32(float(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))) for x, y, z in zip(a, b, c)]
    # float(Fraction) rounds to nearest float64, then to float32: a double rounding, which can
    # differ from one rounding only at a float32 tie; the products here never land on one.
    assert np.array_equal(out, np.array(exact, np.float32))
    twice = (a * b + c).astype(np.float32)  # multiply then add, in float32: rounds twice
    assert not np.array_equal(out, twice)  # so the check above can tell the two apart


def test_tanh32_is_within_0_53_ulp_of_tanh():
    bits = np.arange(1, 0x41180000, 61, dtype=np.uint32)  # 4.2 M floats from 1.4e-45 to 9.5
    for chunk in np.array_split(bits, 8):
        x = chunk.view(np.float32)
        got = x.copy()
        tanh32_inplace(got)
        exact = np.tanh(x.astype(np.float64))
        ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
        assert np.max(np.abs(got - exact) / ulp) <= 0.53
        negative = -x
        tanh32_inplace(negative)
        assert np.array_equal(negative, -got)  # odd, bit for bit


def test_tanh32_special_values():
    x = np.array([0.0, -0.0, 9.0, 9.02, 50.0, -50.0, np.inf, -np.inf, np.nan, 1e-30, -1e-45], np.float32)
    got = x.copy()
    tanh32_inplace(got)
    np.testing.assert_array_equal(got[2:8], np.tanh(x[2:8].astype(np.float64)).astype(np.float32))
    assert got[0] == 0 and not np.signbit(got[0]) and got[1] == 0 and np.signbit(got[1])
    assert np.isnan(got[8])
    assert got[9] == x[9] and got[10] == x[10]  # tanh(x) = x below float32 resolution
