"""Helpers for kernels written out as LLVM vector IR inside Numba intrinsics.

Numba's loop vectoriser does well on plain loops, but where a loop body needs more values
than there are vector registers it hoists and spills them (the CNN's convolutions, see
`hebbian.encoders.cnn_blocks`). Kernels written out here are built from IEEE operations
with no fast-math flags, so LLVM keeps every rounding as written: the numbers are those of
the scalar code, whatever the vector width.

Tried and not kept: the plastic layers' row loop (`hebbian.kernels._rows`) as such a block,
without the run-time overlap checks Numba's vectoriser adds at each row pair. The same bits,
but no faster (1.03-1.11x the time, paired in one process): the loop body, not its entry,
sets the pace there.

`LANES` is the vector width in float32 lanes: 16 where Numba compiles for AVX-512 (32
vector registers), 8 otherwise (AVX2's 16 registers; a CPU with narrower vectors gets the
same IR split by LLVM, and one without FMA the library's correctly rounded `fmaf`).
"""
from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils, config


def _vector_lanes() -> int:
    """16 float32 lanes where Numba compiles for AVX-512, else 8.

    Numba compiles for NUMBA_CPU_NAME / NUMBA_CPU_FEATURES when they are set (a generic
    build for a mixed cluster, say), else for this CPU."""
    if config.CPU_FEATURES is not None:
        features = config.CPU_FEATURES
    elif config.CPU_NAME is not None and config.CPU_NAME != "host":
        features = ""  # a named CPU without a feature list: do not assume AVX-512
    else:
        features = llvm.get_host_cpu_features().flatten()
    return 16 if "+avx512f" in features.split(",") else 8


LANES = _vector_lanes()

F32 = ir.FloatType()
I32 = ir.IntType(32)
I64 = ir.IntType(64)
VEC = ir.VectorType(F32, LANES)
FLAT_F32 = types.Array(types.float32, 1, "C")


class VectorCode:
    """IR helpers over one intrinsic's arguments: array data pointers (`arrays[i]`, None for a
    scalar argument), int64 offsets, vector loads and stores at element offsets, broadcasts,
    fused multiply-adds and Numba's float max."""

    def __init__(self, context, builder, signature, args):
        self.builder = builder
        self.arrays = [context.make_array(t)(context, builder, v).data if isinstance(t, types.Array) else None
                       for t, v in zip(signature.args, args)]
        self._fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(VEC, [VEC] * 3),
                                                   f"llvm.fma.v{LANES}f32")

    @staticmethod
    def index(value) -> ir.Value:
        return value if isinstance(value, ir.Value) else ir.Constant(I64, value)

    def add(self, *offsets) -> ir.Value:
        """The sum of int64 offsets (IR values or ints)."""
        total = self.index(offsets[0])
        for offset in offsets[1:]:
            total = self.builder.add(total, self.index(offset))
        return total

    def mul(self, offset, factor) -> ir.Value:
        return self.builder.mul(self.index(offset), self.index(factor))

    def _at(self, pointer, offset):
        return self.builder.bitcast(self.builder.gep(pointer, [self.index(offset)]), ir.PointerType(VEC))

    def load(self, pointer, offset):
        """LANES float32 from pointer[offset] (no alignment assumed)."""
        return self.builder.load(self._at(pointer, offset), align=4)

    def store(self, value, pointer, offset):
        self.builder.store(value, self._at(pointer, offset), align=4)

    def broadcast(self, pointer, offset):
        """pointer[offset] in every lane: one 4-byte load."""
        scalar = self.builder.load(self.builder.gep(pointer, [self.index(offset)]), align=4)
        one = self.builder.insert_element(ir.Constant(VEC, None), scalar, ir.Constant(I32, 0))
        return self.builder.shuffle_vector(one, ir.Constant(VEC, None), ir.Constant(ir.VectorType(I32, LANES), [0] * LANES))

    def fmadd(self, a, b, c):
        """a * b + c, rounded once (llvm.fma)."""
        return self.builder.call(self._fma, [a, b, c])

    def max(self, a, b):
        """Numba's max(a, b) on floats, per lane: b where b > a, else a (so NaN in a wins)."""
        return self.builder.select(self.builder.fcmp_ordered(">", b, a), b, a)

    @staticmethod
    def zeros():
        return ir.Constant(VEC, [0.0] * LANES)
