"""The paper's CarRacing CNN, its weights evolved alongside the Hebbian coefficients.

    (3, 84, 84) -> conv 6 @ 3x3 stride 1 -> tanh -> maxpool 2   -> (6, 41, 41)
                -> conv 8 @ 5x5 stride 2 -> tanh -> maxpool 2   -> (8, 9, 9) -> 648 features

No biases: 6*3*3*3 + 8*6*5*5 = 1,362 parameters, taken as views of the agent's flat vector
(conv1 weights (6, 3, 3, 3) first, then conv2 (8, 6, 5, 5), C order). Features are the
(8, 9, 9) map flattened in C order, as `torch.Tensor.reshape(-1)` would give.

Why Numba and not torch.conv2d: at batch size one, torch spends ~750 us per frame on one
thread (mostly per-op overhead and a generic im2col); these direct kernels take ~40 us
(see below). Tests hold them to a plain one-output-at-a-time transcription bit for bit,
and to torch.

Arithmetic, the same on every machine: each convolution output is one running sum over its
taps in C order of the weight tensor (input channel, then ky, then kx), starting from +0.0,
every step an exactly rounded fused multiply-add (LLVM's ``llvm.fma``: IEEE 754
fusedMultiplyAdd, a single instruction where the CPU has FMA and a correctly rounded library
call where it has not). No fast-math: LLVM may not reorder or
re-associate anything, so vector width, unrolling and CPU change the speed only, never a bit
of the features. tanh is `hebbian.portable_math.tanh32`, a rational function evaluated in
float64 (within 0.53 units in the last place of the exact tanh): NumPy's float32 tanh picks
its code by CPU (a SIMD polynomial with AVX-512, the scalar libm call without, ~36 us for
the pooled map on an AVX2 core against ~15-21 us for this one), so its last bits, and with
them a whole episode, depended on the node. tanh is monotonic, so max-pooling the
pre-activations and taking tanh of the 4x fewer pooled values is exact.

What makes it fast (one core of an AMD EPYC with AVX-512, ~3.3 GHz, where 16-lane FMAs at
one a cycle would take ~19 us for conv1's 1.01 M multiply-adds and ~8.4 us for conv2's 0.44 M):

* FMA rather than a multiply then an add: half the arithmetic instructions.
* The convolutions are vector code written out (`hebbian.encoders.cnn_blocks`): a block of
  `LANES` output columns keeps a sum per output channel and row of a pooled row pair (conv1
  6 x 2, conv2 8 x 2 with 16 lanes), each input vector loaded once for the sums that read
  it, each weight a 4-byte broadcast where it is used. Numba's loop vectoriser, given the
  same loops, hoisted the weights out as whole vectors, spilled them and reloaded 64 bytes
  per multiply-add: conv1 ~26 -> ~21 us, conv2 ~12.7 -> ~9.2 us, the same bits.
* Only what is kept: conv2's output is 19 x 19 and its pooling (floor) drops the 19th row
  and column, the only conv2 outputs that read pooled conv1 rows and columns 39 and 40. So
  conv1 computes the pooled 39 x 39 (conv rows and columns 0..77), as 80 columns, whole
  vectors that never read past the frame. Features are the same as computing everything.
* conv2's stride 2 becomes unit stride by splitting the pooled conv1 map into phase planes
  (`planes[c, y % 4, x % 2]`, 10 x 20 each, written directly by conv1's pooling): output
  rows Y = 2 py + r read input rows 4 py + 2 r + ky, i.e. plane (2 r + ky) % 4 at row
  py + (2 r + ky) // 4, so each pooled row pair is one flat run of 20 columns, and all nine
  pairs together one run of 178 positions (192 computed: 12 vectors of 16).

The CNN then takes ~38-41 us a frame: conv1 ~21, `tanh32` of the pooled map ~7, conv2 ~9,
the pooling and calls the rest (`python -m benchmarks.kernels`, BENCHMARKS.md).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from hebbian.encoders.cnn_blocks import CONV1_COLS, CONV2_GROUP, LANES, SIDE, conv1_block, conv2_block
from hebbian.portable_math import tanh32_inplace

CONV1_SHAPE = (6, 3, 3, 3)
CONV2_SHAPE = (8, 6, 5, 5)

# Layout constants of the kernels (see the module docstring).
_POOL1 = 39                    # pooled conv1 rows and columns that conv2's kept outputs read (of 41)
_PH_W, _PH_H = 20, 10          # a phase plane: (y // 4, x // 2) of the used 39 x 39 pooled map
_PH = _PH_W * _PH_H
_CONV2_RUN = -(-178 // LANES) * LANES  # flat conv2 positions per row parity: the 178 kept ones, in whole vectors
# After the last plane, read only for conv2 outputs that are dropped: the last input
# channel's last plane (5 * 8 + 7) is read up to position _CONV2_RUN - 1 of plane row 1, column 2.
_PH_PAD = _CONV2_RUN + _PH_W + 2 - _PH


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
        self._rowmax = np.zeros(6 * CONV1_COLS, dtype=np.float32)  # conv1: max of a row pair per channel
        self._sums = np.zeros((2 * CONV2_GROUP, _CONV2_RUN), dtype=np.float32)  # conv2: a group's channels x 2 row parities
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
        _encode(obs, self._w1, self._w2, self._planes, self._rowmax, self._sums, self._out)
        return self._out


@njit(nogil=True, cache=True)
def _encode(x, w1, w2, planes, rowmax, sums, out):
    """The whole CNN in one compiled call (each call from Python costs ~0.2-1 us):
    x (3, 84, 84) -> out (648,), the other arrays as `PaperCNN` keeps them."""
    _conv1_pool(x, w1, planes, rowmax)
    tanh32_inplace(planes)
    _conv2_pool(planes, w2, sums, out)
    tanh32_inplace(out)


@njit(nogil=True, cache=True)
def _conv1_pool(x, w1, planes, rowmax):
    """conv1 (3x3, stride 1) and its 2x2 max-pool, before tanh, for the pooled rows and columns
    0..38 that conv2 needs.

    x: (3, 84, 84) float32, C-contiguous. w1: (6, 3, 3, 3). planes: flat (6 * 8 * 200 + pad,),
    pooled value (o, py, px) written at ((o * 4 + py % 4) * 2 + px % 2) * 200 + (py // 4) * 20
    + px // 2. rowmax: (6 * CONV1_COLS,) scratch, the row pair's maximum per channel and column
    (`conv1_block`, all 6 channels of `LANES` columns at a time).
    """
    xf = x.reshape(-1)
    wf = w1.reshape(-1)
    for py in range(_POOL1):
        base = 2 * py * SIDE
        for col in range(0, CONV1_COLS, LANES):
            conv1_block(xf, wf, rowmax, base, col)
        # Column pooling, by column parity: pooled column px = 2 n + parity goes to plane
        # (o, py % 4, parity), row py // 4, column n (a stride-4 read, vectorised).
        for o in range(6):
            for parity in range(2):
                dst = ((o * 4 + py % 4) * 2 + parity) * _PH + (py // 4) * _PH_W
                src = o * CONV1_COLS + 2 * parity
                for n in range(20 - parity):
                    planes[dst + n] = max(rowmax[src + 4 * n], rowmax[src + 4 * n + 1])


@njit(nogil=True, cache=True)
def _conv2_pool(planes, w2, sums, out):
    """conv2 (5x5, stride 2) on the tanh'ed phase planes and its 2x2 max-pool, before tanh.

    planes: as written by `_conv1_pool`. w2: (8, 6, 5, 5). sums: (2 * CONV2_GROUP, _CONV2_RUN)
    scratch. out: (648,) = (8, 9, 9) C order. Flat positions p = py * 20 + X (py: pooled
    row, X: conv2 column; X = 18, 19 and p >= 178 are computed and dropped), `LANES` at a
    time, CONV2_GROUP channels and both rows 2 py, 2 py + 1 of each (`conv2_block`).
    """
    wf = w2.reshape(-1)
    sf = sums.reshape(-1)
    n = _CONV2_RUN
    for group in range(8 // CONV2_GROUP):
        for p in range(0, n, LANES):
            conv2_block(planes, wf, sf, group, p, n, _PH, _PH_W)
        for o in range(CONV2_GROUP):
            channel = group * CONV2_GROUP + o
            a = 2 * o * n
            for py in range(9):
                for px in range(9):
                    m = a + py * _PH_W + 2 * px
                    out[channel * 81 + py * 9 + px] = max(max(sf[m], sf[m + 1]), max(sf[n + m], sf[n + m + 1]))
