"""The paper's CarRacing CNN, its weights evolved alongside the Hebbian coefficients.

    (3, 84, 84) -> conv 6 @ 3x3 stride 1 -> tanh -> maxpool 2   -> (6, 41, 41)
                -> conv 8 @ 5x5 stride 2 -> tanh -> maxpool 2   -> (8, 9, 9) -> 648 features

No biases: 6*3*3*3 + 8*6*5*5 = 1,362 parameters, taken as views of the agent's flat vector
(conv1 weights (6, 3, 3, 3) first, then conv2 (8, 6, 5, 5), C order). Features are the
(8, 9, 9) map flattened in C order, as `torch.Tensor.reshape(-1)` would give.

Why Numba and not torch.conv2d: at batch size one, torch spends ~750 us per frame on one
thread (mostly per-op overhead and a generic im2col); these direct kernels take ~36 us
(see BENCHMARKS.md and `python -m benchmarks.kernels`). Tests check them against torch.

Arithmetic, the same on every machine: each convolution output is one running sum over its
taps in C order of the weight tensor (input channel, then ky, then kx), starting from +0.0,
every step an exactly rounded fused multiply-add (`hebbian.portable_math.fma32`, LLVM's
``llvm.fma``: IEEE 754 fusedMultiplyAdd, a single instruction where the CPU has FMA and a
correctly rounded library call where it has not). No fast-math: LLVM may not reorder or
re-associate anything, so vector width, unrolling and CPU change the speed only, never a bit
of the features. tanh is `hebbian.portable_math.tanh32`, a rational function evaluated in
float64 (within 0.53 units in the last place of the exact tanh): NumPy's float32 tanh picks
its code by CPU (a SIMD polynomial with AVX-512, the scalar libm call without, ~36 us for
the pooled map on an AVX2 core against ~15-21 us for this one), so its last bits, and with
them a whole episode, depended on the node. tanh is monotonic, so max-pooling the
pre-activations and taking tanh of the 4x fewer pooled values is exact.

What makes it fast (measured on one core of a Xeon with AVX-512, where LLVM's loop
vectoriser uses 8-lane ymm vectors; 2 FMAs per cycle give ~7.4 G vector FMAs/s):

* FMA rather than a multiply then an add: half the arithmetic instructions (the best layout
  without it took ~40 us for conv1). The features differ from those of the previous
  multiply-then-add kernels in the last bits (~1e-7 relative), as any change of rounding would.
* Several independent sums per vector loop: a single running sum of 27 dependent FMAs per
  output waits on FMA latency (conv1 took 41 us that way). conv1 keeps 3 output channels x
  2 output rows = 6 sums per 8 columns, conv2 2 channels x 2 rows = 4. More sums per loop
  (4 x 2, 2 x 4, 6 x 2 for conv1) were not vectorised by LLVM at all, and unrolled by hand
  they were no faster.
* Input rows are streamed (`yi`): each loaded vector is used at once by every sum that
  needs it, then dies. Written per output row instead, LLVM merges the identical loads of
  the two rows and keeps them live across the whole tap loop, which spills registers
  (40 us instead of 27, before the cut below).
* Only what is kept: conv2's output is 19 x 19 and its pooling (floor) drops the 19th row
  and column, the only conv2 outputs that read pooled conv1 rows and columns 39 and 40. So
  conv1 computes the pooled 39 x 39 (conv rows and columns 0..77; 13% fewer FMAs than the
  41 x 41 computed before), as 80 columns = 10 full vectors of 8 per row, which never read past the frame
  (no scalar remainder, no edge case). Features are the same as computing everything.
* conv2's stride 2 becomes unit stride by splitting the pooled conv1 map into phase planes
  (`planes[c, y % 4, x % 2]`, 10 x 20 each, written directly by conv1's pooling): output
  rows Y = 2 py + r read input rows 4 py + 2 r + ky, i.e. plane (2 r + ky) % 4 at row
  py + (2 r + ky) // 4, so each pooled row pair is one flat run of 20 columns, and all nine
  pairs together one vector loop of 184 (23 vectors; 162 outputs are kept).

conv1 ~21 us (1.01 M MACs computed; ~17 us would be every FMA slot of the core), conv2
~9.5 us, NumPy's two tanh then ~3 us: ~36 us a frame (`tanh32` came later and was not timed
on that CPU; without AVX-512 it takes about half of NumPy's time, see BENCHMARKS.md). The
previous kernels (one output at a time, a multiply then an add) took ~50 us and ~70 us; all
41 x 41 pooled values with 88 columns, 27 and 11 us.

A Numba pitfall met here: a variable assigned inside a vector loop and assigned again after
it (Numba keeps one variable per name) stopped LLVM from vectorising conv1 (184 us); the
kernels keep such names distinct.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from hebbian.portable_math import fma32, tanh32_inplace

CONV1_SHAPE = (6, 3, 3, 3)
CONV2_SHAPE = (8, 6, 5, 5)

# Layout constants of the kernels (see the module docstring).
_SIDE = 84                     # input frame side
_PLANE = _SIDE * _SIDE         # one input channel, flat
_POOL1 = 39                    # pooled conv1 rows and columns that conv2's kept outputs read (of 41)
_COLS1 = 80                    # conv1 columns computed per row: 78 needed, 10 full vectors of 8
_PH_W, _PH_H = 20, 10          # a phase plane: (y // 4, x // 2) of the used 39 x 39 pooled map
_PH = _PH_W * _PH_H
_PH_PAD = 8                    # after the last plane: read only for conv2 outputs that are dropped
_CONV2_RUN = 184               # flat conv2 positions per row parity: 9 pooled rows x 20, 23 vectors


class PaperCNN:
    """Encoder of (3, 84, 84) float32 frames in [0, 1] to 648 float32 features."""

    obs_shape = (3, 84, 84)
    num_features = 648
    num_params = int(np.prod(CONV1_SHAPE) + np.prod(CONV2_SHAPE))

    def __init__(self):
        self._w1 = self._w2 = None
        # The pooled conv1 map as phase planes (6, 4, 2, 10 * 20), flat with a short tail;
        # entries no pooled value maps to stay 0 (tanh(0) = 0) and feed no kept output.
        self._planes = np.zeros(6 * 8 * _PH + _PH_PAD, dtype=np.float32)
        self._rowmax = np.zeros(3 * _COLS1, dtype=np.float32)  # conv1: max of a row pair, 3 channels
        self._sums = np.zeros((4, _CONV2_RUN), dtype=np.float32)  # conv2: 2 channels x 2 row parities
        self._out = np.zeros(self.num_features, dtype=np.float32)

    def set_params(self, flat: np.ndarray) -> None:
        """Use `flat` (float32, (1362,)) as the conv weights, sharing its memory.

        The kernels read the weights flat, so a non-contiguous `flat` (never one from
        `Policy`, whose parts are slices of one contiguous vector) is copied once here.
        """
        if flat.shape != (self.num_params,) or flat.dtype != np.float32:
            raise ValueError(f"the CNN takes a float32 vector of {self.num_params} values, got {flat.dtype} {flat.shape}")
        flat = np.ascontiguousarray(flat)
        n1 = int(np.prod(CONV1_SHAPE))
        self._w1 = flat[:n1].reshape(CONV1_SHAPE)
        self._w2 = flat[n1:].reshape(CONV2_SHAPE)

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """(3, 84, 84) float32 -> (648,) float32 features (an internal buffer, overwritten next call)."""
        if self._w1 is None:
            raise RuntimeError("call set_params(flat) before encode")
        if obs.shape != self.obs_shape:
            raise ValueError(f"the CNN takes frames of shape {self.obs_shape}, got {obs.shape}")
        obs = np.ascontiguousarray(obs, dtype=np.float32)  # the kernels read it flat; no copy in the usual case
        _conv1_pool(obs, self._w1, self._planes, self._rowmax)
        tanh32_inplace(self._planes)
        _conv2_pool(self._planes, self._w2, self._sums, self._out)
        tanh32_inplace(self._out)
        return self._out


@njit(nogil=True, cache=True)
def _conv1_pool(x, w1, planes, rowmax):
    """conv1 (3x3, stride 1) and its 2x2 max-pool, before tanh, for the pooled rows and columns
    0..38 that conv2 needs.

    x: (3, 84, 84) float32, C-contiguous. w1: (6, 3, 3, 3). planes: flat (6 * 8 * 200 + 8,),
    pooled value (o, py, px) written at ((o * 4 + py % 4) * 2 + px % 2) * 200 + (py // 4) * 20
    + px // 2. rowmax: (3 * 80,) scratch. Each output row pair 2 py, 2 py + 1 is one
    vectorised loop over 80 columns, 3 output channels at a time (6 independent sums); input
    rows yi = 0..3 of the pair are streamed, each loaded vector feeding the sums of both rows.
    """
    xf = x.reshape(-1)
    wf = w1.reshape(-1)
    for group in range(2):
        w0 = group * 81  # first weight of output channel 3 * group
        for py in range(_POOL1):
            base = 2 * py * _SIDE
            for col in range(_COLS1):
                a0 = a1 = b0 = b1 = c0 = c1 = np.float32(0.0)
                for ch in range(3):
                    for yi in range(4):
                        for kx in range(3):
                            v = xf[ch * _PLANE + base + yi * _SIDE + kx + col]
                            if yi < 3:  # tap ky = yi of output row 2 py
                                a0 = fma32(wf[w0 + ch * 9 + yi * 3 + kx], v, a0)
                                b0 = fma32(wf[w0 + 27 + ch * 9 + yi * 3 + kx], v, b0)
                                c0 = fma32(wf[w0 + 54 + ch * 9 + yi * 3 + kx], v, c0)
                            if yi > 0:  # tap ky = yi - 1 of output row 2 py + 1
                                a1 = fma32(wf[w0 + ch * 9 + (yi - 1) * 3 + kx], v, a1)
                                b1 = fma32(wf[w0 + 27 + ch * 9 + (yi - 1) * 3 + kx], v, b1)
                                c1 = fma32(wf[w0 + 54 + ch * 9 + (yi - 1) * 3 + kx], v, c1)
                rowmax[col] = max(a0, a1)
                rowmax[_COLS1 + col] = max(b0, b1)
                rowmax[2 * _COLS1 + col] = max(c0, c1)
            # Column pooling, by column parity: pooled column px = 2 n + parity goes to plane
            # (o, py % 4, parity), row py // 4, column n (a stride-4 read, vectorised).
            for r in range(3):
                for parity in range(2):
                    dst = (((3 * group + r) * 4 + py % 4) * 2 + parity) * _PH + (py // 4) * _PH_W
                    src = r * _COLS1 + 2 * parity
                    for n in range(20 - parity):
                        planes[dst + n] = max(rowmax[src + 4 * n], rowmax[src + 4 * n + 1])


@njit(nogil=True, cache=True)
def _conv2_pool(planes, w2, sums, out):
    """conv2 (5x5, stride 2) on the tanh'ed phase planes and its 2x2 max-pool, before tanh.

    planes: as written by `_conv1_pool`. w2: (8, 6, 5, 5). sums: (4, 184) scratch.
    out: (648,) = (8, 9, 9) C order. For 2 output channels at a time and each input channel,
    one vector loop over the flat positions p = py * 20 + X (py: pooled row, X: conv2
    column; X = 18, 19 and p >= 178 are computed and dropped) keeps 4 running sums: rows
    2 py and 2 py + 1 of both channels. The 25 weights of a (channel, input channel) pair
    stay in registers; the sums are carried across input channels in `sums`, which keeps
    each output's order (c, ky, kx).
    """
    wf = w2.reshape(-1)
    sf = sums.reshape(-1)
    n = _CONV2_RUN
    for group in range(4):
        sf[:] = 0.0
        for ch in range(6):
            cb = ch * 8 * _PH
            for p in range(n):
                s0 = sf[p]
                s1 = sf[n + p]
                t0 = sf[2 * n + p]
                t1 = sf[3 * n + p]
                for ky in range(5):
                    for kx in range(5):
                        # row 2 py reads input row 4 py + ky, row 2 py + 1 reads 4 py + 2 + ky
                        v0 = planes[cb + ((ky % 4) * 2 + kx % 2) * _PH + p + (ky // 4) * _PH_W + kx // 2]
                        v1 = planes[cb + (((ky + 2) % 4) * 2 + kx % 2) * _PH + p + ((ky + 2) // 4) * _PH_W + kx // 2]
                        k = group * 300 + ch * 25 + ky * 5 + kx
                        s0 = fma32(wf[k], v0, s0)
                        s1 = fma32(wf[k], v1, s1)
                        t0 = fma32(wf[k + 150], v0, t0)
                        t1 = fma32(wf[k + 150], v1, t1)
                sf[p] = s0
                sf[n + p] = s1
                sf[2 * n + p] = t0
                sf[3 * n + p] = t1
        for r in range(2):
            o = 2 * group + r
            a = 2 * r * n
            for py in range(9):
                for px in range(9):
                    m = a + py * _PH_W + 2 * px
                    out[o * 81 + py * 9 + px] = max(max(sf[m], sf[m + 1]), max(sf[n + m], sf[n + m + 1]))
