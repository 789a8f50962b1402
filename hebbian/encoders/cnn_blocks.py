"""The paper CNN's convolutions as vector code: one block of output columns per call, every
output channel at once, each weight broadcast from memory where it is used.

Why not Numba's loop vectoriser: on conv1 it kept 3 output channels x 2 rows = 6 running sums
per vector and hoisted the group's 81 weights out of the column loop as broadcast vectors,
which do not fit in the 32 vector registers, so they were spilled and every multiply-add
reloaded a whole 64-byte vector from the stack. With an input vector (often unaligned, so
two cache lines) every 4.5 multiply-adds, the loads rather than the FMA units set the pace:
~26 us for conv1's 1.01 M multiply-adds at ~3.3 GHz, where the FMA units alone would take
~19 us (16 lanes a cycle), and ~12.7 us for conv2's 0.44 M (~8.4 us). Here a block keeps a
sum per output channel and output row (conv1 6 x 2; conv2 8 x 2 with 16 lanes, 4 x 2 with 8)
and walks the taps in order: per tap, the two input vectors (one per output row) are loaded,
and each channel's weight is broadcast from memory once (4 bytes) for its two FMAs. Nothing
is left to spill: 12-16 sums, two inputs and a weight. The weight loads stay in the loop
because the block's stores may alias them as far as LLVM knows (Numba passes no aliasing
information), so they are not hoisted. conv1 ~21 us, conv2 ~9.2 us (written as the first
version of this module, each weight loaded separately for each row, LLVM merged the two
loads and spilled again: conv2 stayed at ~13 us).

The arithmetic is the module docstring's of `hebbian.encoders.cnn`: every output is one
running sum over its taps in C order of the weight tensor, from +0.0, each step one
`llvm.fma` (correctly rounded on every CPU), and the row-pair maximum is Numba's
``max(a, b)`` (b where b > a, else a: NaN in a wins, as before). Each lane is one output,
so the vector width changes the speed only: 16 lanes where the CPU has AVX-512 (32
registers), 8 otherwise (16 registers hold conv1's 12 sums; conv2 then takes 4 channels at
a time). A CPU without FMA instructions gets the library's correctly rounded `fmaf`.
"""
from __future__ import annotations

from numba import types
from numba.extending import intrinsic

from hebbian.vector_ir import FLAT_F32, LANES, VectorCode

CONV2_GROUP = 8 if LANES == 16 else 4  # conv2 output channels per block: 2 sums each, all in registers

# The frame conv1 reads, (3, 84, 84) flat, and the columns it computes per output row: the
# 78 that conv2's kept outputs need, in whole vectors of 8 or 16 (see hebbian.encoders.cnn).
SIDE = 84
CONV1_COLS = 80
_PLANE = SIDE * SIDE
_CONV1_OUT = 6
_CONV2_IN = 6


def _flat_f32(*arrays) -> bool:
    return all(a == FLAT_F32 for a in arrays)


@intrinsic
def conv1_block(typingctx, x, w1, rowmax, base, col):
    """conv1 for `LANES` columns from `col` of the output row pair 2 py, 2 py + 1 (base = 2 py * 84),
    all 6 channels, then the pair's maximum:
    ``rowmax[o * 80 + col + l] = max(conv1[o, 2 py, col + l], conv1[o, 2 py + 1, col + l])``.

    x: the (3, 84, 84) frame flat; w1: (6, 3, 3, 3) flat; rowmax: (6 * CONV1_COLS,). Per tap,
    the input vectors of rows 2 py + ky and 2 py + ky + 1 are loaded and each channel's
    weight is broadcast once for its two FMAs.
    """
    if not (_flat_f32(x, w1, rowmax) and base == col == types.int64):
        return None
    sig = types.void(x, w1, rowmax, base, col)

    def codegen(context, builder, signature, args):
        b = VectorCode(context, builder, signature, args)
        x_p, w_p, out_p = b.arrays[0], b.arrays[1], b.arrays[2]
        start = builder.add(args[3], args[4])
        zero = b.zeros()
        top, bottom = [zero] * _CONV1_OUT, [zero] * _CONV1_OUT
        for ch in range(3):
            for ky in range(3):
                for kx in range(3):
                    # Input row 2 py + ky + r feeds output row 2 py + r; each weight is
                    # broadcast once and used for both rows.
                    upper = b.load(x_p, b.add(start, ch * _PLANE + ky * SIDE + kx))
                    lower = b.load(x_p, b.add(start, ch * _PLANE + (ky + 1) * SIDE + kx))
                    for o in range(_CONV1_OUT):
                        w = b.broadcast(w_p, o * 27 + ch * 9 + ky * 3 + kx)
                        top[o] = b.fmadd(w, upper, top[o])
                        bottom[o] = b.fmadd(w, lower, bottom[o])
        for o in range(_CONV1_OUT):
            b.store(b.max(top[o], bottom[o]), out_p, b.add(args[4], o * CONV1_COLS))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def conv2_block(typingctx, planes, w2, sums, group, p, run, plane, row):
    """conv2 for `LANES` flat positions from `p` (position = pooled row * `row` + column) of the
    output channels group * CONV2_GROUP .. + CONV2_GROUP - 1, both output rows of each pooled
    row: ``sums[(o * 2 + r) * run + p + l]`` for local channel o and row parity r.

    planes: the tanh'ed phase planes of `hebbian.encoders.cnn` (input channel c, phase (y % 4,
    x % 2) at ((c * 4 + y % 4) * 2 + x % 2) * plane); w2: (8, 6, 5, 5) flat. Output row
    2 py + r reads input row 4 py + 2 r + ky, i.e. phase row (2 r + ky) % 4, plane row
    py + (2 r + ky) // 4.
    """
    if not (_flat_f32(planes, w2, sums) and group == p == run == plane == row == types.int64):
        return None
    sig = types.void(planes, w2, sums, group, p, run, plane, row)

    def codegen(context, builder, signature, args):
        b = VectorCode(context, builder, signature, args)
        in_p, w_p, out_p = b.arrays[0], b.arrays[1], b.arrays[2]
        group_v, p_v, run_v, plane_v, row_v = args[3:]
        zero = b.zeros()
        # The group's first weight pointer: w2 + group * CONV2_GROUP * 150.
        w_group = builder.gep(w_p, [b.mul(group_v, CONV2_GROUP * 150)])
        sums = [[zero, zero] for _ in range(CONV2_GROUP)]
        for ch in range(_CONV2_IN):
            for ky in range(5):
                for kx in range(5):
                    # Row parity r reads phase row y = 2 r + ky; each weight is broadcast once
                    # and used for both parities.
                    rows = []
                    for y in (ky, ky + 2):
                        phase = (ch * 4 + y % 4) * 2 + kx % 2
                        at = b.add(b.mul(plane_v, phase), p_v, b.mul(row_v, y // 4), kx // 2)
                        rows.append(b.load(in_p, at))
                    for o in range(CONV2_GROUP):
                        w = b.broadcast(w_group, o * 150 + ch * 25 + ky * 5 + kx)
                        for r in range(2):
                            sums[o][r] = b.fmadd(w, rows[r], sums[o][r])
        for o in range(CONV2_GROUP):
            for r in range(2):
                at = b.add(b.mul(run_v, o * 2 + r), p_v)
                b.store(sums[o][r], out_p, at)
        return context.get_dummy_value()

    return sig, codegen
