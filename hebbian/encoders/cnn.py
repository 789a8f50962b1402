"""The paper's CarRacing CNN, its weights evolved alongside the Hebbian coefficients.

    (3, 84, 84) -> conv 6 @ 3x3 stride 1 -> tanh -> maxpool 2   -> (6, 41, 41)
                -> conv 8 @ 5x5 stride 2 -> tanh -> maxpool 2   -> (8, 9, 9) -> 648 features

No biases: 6*3*3*3 + 8*6*5*5 = 1,362 parameters, taken as views of the agent's flat vector
(conv1 weights (6, 3, 3, 3) first, then conv2 (8, 6, 5, 5), C order). Features are the
(8, 9, 9) map flattened in C order, as `torch.Tensor.reshape(-1)` would give.

Why Numba and not torch.conv2d: at batch size one, torch spends ~750 us per frame on one
thread (mostly per-op overhead and a generic im2col); this direct kernel takes a fraction
of that (see BENCHMARKS.md), which matters once the environment is fast. Tests check it
against torch. What makes it cheap: every output is summed in registers over its unrolled taps (conv1
vectorised along x, conv2 across its 8 output channels); tanh is monotonic, so max-pooling
the pre-activations and taking tanh of the 4x fewer pooled values is exact (done by NumPy's
SIMD tanh); conv2's 19th output row and column, which the floor of the second pooling
drops, are never computed. Sums run in a fixed order without fast-math, so features are
the same on every machine.
"""
from __future__ import annotations

import numpy as np
from numba import njit

CONV1_SHAPE = (6, 3, 3, 3)
CONV2_SHAPE = (8, 6, 5, 5)


class PaperCNN:
    """Encoder of (3, 84, 84) float32 frames in [0, 1] to 648 float32 features."""

    obs_shape = (3, 84, 84)
    num_features = 648
    num_params = int(np.prod(CONV1_SHAPE) + np.prod(CONV2_SHAPE))

    def __init__(self):
        self._w1 = self._w2 = None
        self._pooled = np.zeros((6, 41, 41), dtype=np.float32)
        self._rows = np.zeros((2, 82), dtype=np.float32)  # two conv1 rows feeding one pooled row
        self._w2t = np.zeros((150, 8), dtype=np.float32)
        self._out = np.zeros(self.num_features, dtype=np.float32)

    def set_params(self, flat: np.ndarray) -> None:
        """Use `flat` (float32, (1362,)) as the conv weights, sharing its memory."""
        if flat.shape != (self.num_params,) or flat.dtype != np.float32:
            raise ValueError(f"the CNN takes a float32 vector of {self.num_params} values, got {flat.dtype} {flat.shape}")
        n1 = int(np.prod(CONV1_SHAPE))
        self._w1 = flat[:n1].reshape(CONV1_SHAPE)
        self._w2 = flat[n1:].reshape(CONV2_SHAPE)

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """(3, 84, 84) float32 -> (648,) float32 features (an internal buffer, overwritten next call)."""
        if self._w1 is None:
            raise RuntimeError("call set_params(flat) before encode")
        if obs.shape != self.obs_shape:
            raise ValueError(f"the CNN takes frames of shape {self.obs_shape}, got {obs.shape}")
        # tanh runs in NumPy between the two kernels: its SIMD tanh is ~20x faster than the
        # scalar libm call Numba would make, and the pooled maps are small.
        _conv1_pool(obs, self._w1, self._pooled, self._rows)
        np.tanh(self._pooled, out=self._pooled)
        _conv2_pool(self._pooled, self._w2, self._w2t, self._out)
        np.tanh(self._out, out=self._out)
        return self._out


@njit(nogil=True, cache=True)
def _conv1_pool(x, w1, pooled, rows):
    # conv1 (3x3, stride 1) two rows at a time, then max-pooled 2x2 into pooled (6, 41, 41).
    # The 27 taps are the innermost, fully unrolled loop, so each output is summed in a
    # register and LLVM vectorises over xx.
    for o in range(6):
        for py in range(41):
            for r in range(2):
                y = 2 * py + r
                acc = rows[r]
                for xx in range(82):
                    s = np.float32(0.0)
                    for c in range(3):
                        for ky in range(3):
                            for kx in range(3):
                                s += w1[o, c, ky, kx] * x[c, y + ky, xx + kx]
                    acc[xx] = s
            r0 = rows[0]
            r1 = rows[1]
            for px in range(41):
                pooled[o, py, px] = max(max(r0[2 * px], r0[2 * px + 1]), max(r1[2 * px], r1[2 * px + 1]))


@njit(nogil=True, cache=True)
def _conv2_pool(pooled, w2, w2t, out):
    # conv2 (5x5, stride 2) then max-pool 2x2, only the 18x18 outputs that pooling keeps.
    # Stride 2 defeats vectorising along x, so the 8 output channels are the vector instead:
    # eight scalar accumulators (one SIMD register) per position, weights transposed to
    # (tap, channel) on every call (1,200 floats) so the caller's vector stays the source.
    for o in range(8):
        for c in range(6):
            for ky in range(5):
                for kx in range(5):
                    w2t[c * 25 + ky * 5 + kx, o] = w2[o, c, ky, kx]
    for py in range(9):
        for px in range(9):
            m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = np.float32(-np.inf)
            for dy in range(2):
                for dx in range(2):
                    y = 2 * (2 * py + dy)
                    x = 2 * (2 * px + dx)
                    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = np.float32(0.0)
                    for c in range(6):
                        for ky in range(5):
                            for kx in range(5):
                                v = pooled[c, y + ky, x + kx]
                                w = w2t[c * 25 + ky * 5 + kx]
                                s0 += w[0] * v
                                s1 += w[1] * v
                                s2 += w[2] * v
                                s3 += w[3] * v
                                s4 += w[4] * v
                                s5 += w[5] * v
                                s6 += w[6] * v
                                s7 += w[7] * v
                    m0, m1, m2, m3 = max(m0, s0), max(m1, s1), max(m2, s2), max(m3, s3)
                    m4, m5, m6, m7 = max(m4, s4), max(m5, s5), max(m6, s6), max(m7, s7)
            b = py * 9 + px
            out[b], out[81 + b], out[162 + b], out[243 + b] = m0, m1, m2, m3
            out[324 + b], out[405 + b], out[486 + b], out[567 + b] = m4, m5, m6, m7
