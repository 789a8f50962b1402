"""Canvas rows as pixels, and the Numba settings of the raster's kernels.

A canvas row being painted is a plain pixel row, ``px`` (width,) int32 of 0xRRGGBB: four
kilobytes for the 1000-pixel canvas, which stay in the core's first-level cache. Painting a
polygon's span is a vector store, an anti-aliased edge pixel a read and a write; the shrink
compares each row with the one before (see :mod:`.shrink`). :func:`_pack` spreads a
pixel's channels over 16-bit lanes so the shrink sums three channels with one add.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


def _option_available(name: str) -> bool:
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:
        return False
    return hasattr(CPUTargetOptions, name)


# Kernels only read and write arrays they are given, so they are compiled
# without Numba's runtime (NRT): with it, every call passing arrays updates
# their reference counts atomically on entry and exit, which at thousands of
# small calls per frame took a third of the time. Allocating functions stay
# plain ``njit(cache=True)`` and call kernels. ``_nrt`` is a private Numba
# option; where it is unknown the kernels compile normally (same results).
def _jit(**options):
    """``njit(cache=True, **options)``, without Numba's runtime where the option exists."""
    if _option_available("_nrt"):
        options["_nrt"] = False
    return njit(cache=True, **options)


_kernel = _jit()


# Everything called per row, per polygon row or per pixel is inlined into
# its caller: left to LLVM's judgement, calls passing several arrays (each a
# struct of ~7 words) and tuples of them stayed calls and cost more than
# their bodies (with the run-list rows used until session 16 the frame took
# 544 us with the helpers alone inlined, 430-480 us with the row functions
# too). Two ways, for compile time:
#
# * ``_inline``, the small helpers: inlined at Numba's level (its IR copied
#   into every call site, then compiled with the caller).
# * ``_row``, the row functions (one polygon kind, the shrink, the text):
#   compiled once each and inlined by LLVM (``forceinline``: LLVM's
#   alwaysinline). Numba's IR inlining copies a callee's whole IR, its own
#   inlined helpers included, at every call site and processes it again, so
#   with the row functions inlined that way too the frame kernel took ~70 s
#   to compile from a fresh cache and the package's three entry points 139 s
#   (each in its own process; mostly copying IR); this way the kernel took
#   ~30 s and all three, in one process, ~50 s (measured with the run-list
#   rows; the pixel rows compile in about half that). The frames are the
#   same and as fast (paired on recorded frames: 0.99-1.00x); LLVM inlining
#   _aaline_row as well saved 6 s more but cost 1-2% a frame.
#
# A call site must pass the argument types the other call sites pass (an
# int64 variable, not a literal 0), or the row function compiles again.
_inline = _jit(inline="always")
# An older Numba without forceinline: inlined at Numba's level (same results, slower to compile).
_row = _jit(forceinline=True) if _option_available("forceinline") else _inline


@_inline
def _u(i):
    """An index known to be >= 0, as unsigned: Numba then leaves out the wrap-around
    of negative indices (a shift, an and and an add per access). In the shrink's changed
    pixels and outputs that was 0.94x a frame, in the row painter 0.97x. Only ever an
    index: unsigned and signed integers mix into floats in Numba's arithmetic."""
    return np.uint64(i)


@_inline
def _i16(v):
    return ((v + 32768) & 0xFFFF) - 32768


@_inline
def _i32(v):
    return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648


@_inline
def _pack(rgb):
    """0xRRGGBB -> the shrink's packed pixel ``r << 32 | g << 16 | b``.

    16-bit lanes let smoothscale's sums of whole pixels (<= 11 * 255) be
    taken for all three channels with one 64-bit add per pixel.
    """
    return ((rgb & 0xFF0000) << 16) | ((rgb & 0xFF00) << 8) | (rgb & 0xFF)


_RUN = 16  # pixels one vector store writes (AVX-512: 16 int32)


@intrinsic
def _store_run(typingctx, px, x, color, n):
    """``px[x : x + n] = color`` for ``0 <= n <= _RUN``, as one masked vector store.

    Lanes from ``n`` on are masked off: not written, and they cannot fault past the
    array's end. The caller keeps ``0 <= x`` and ``x + n <= px.shape[0]``. Without
    AVX-512, LLVM splits the store (AVX2's masked moves) or writes lane by lane: the
    same pixels, slower."""
    row = types.Array(types.int32, 1, "C")
    if not (px == row and x == color == n == types.int64):
        return None

    def codegen(context, builder, signature, args):
        px_v, x_v, color_v, n_v = args
        i32 = ir.IntType(32)
        vec = ir.VectorType(i32, _RUN)

        def splat(value):
            one = builder.insert_element(ir.Constant(vec, ir.Undefined), value, ir.Constant(i32, 0))
            return builder.shuffle_vector(one, one, ir.Constant(vec, [0] * _RUN))

        data = context.make_array(signature.args[0])(context, builder, px_v).data
        at = builder.bitcast(builder.gep(data, [x_v]), ir.PointerType(vec))
        mask = builder.icmp_signed("<", ir.Constant(vec, list(range(_RUN))), splat(builder.trunc(n_v, i32)))
        store = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [vec, ir.PointerType(vec), i32, ir.VectorType(ir.IntType(1), _RUN)]),
            f"llvm.masked.store.v{_RUN}i32.p0",
        )
        builder.call(store, [splat(builder.trunc(color_v, i32)), at, ir.Constant(i32, 4), mask])
        return context.get_dummy_value()

    return types.void(px, x, color, n), codegen


@_inline
def _fill(px, x1, x2, color):
    """Pixels ``x1..x2`` (inclusive, clipped to the row) become ``color``.

    Whole vector stores, then one masked store for the rest: a slice assignment's
    loop ended in a 4-pixel and a 1-pixel loop, whose varying trip counts cost
    branch mispredictions at every span end (a loop over ``px[x]`` stayed scalar:
    Numba's wrap-around of negative indices).
    """
    x, x2 = max(x1, 0), min(x2, px.shape[0] - 1)
    while x2 - x >= _RUN - 1:
        _store_run(px, x, np.int64(color), np.int64(_RUN))
        x += _RUN
    if x <= x2:
        _store_run(px, x, np.int64(color), x2 + 1 - x)


@_inline
def _set(px, x, color):
    """Set pixel ``x`` (ignored off the row) to ``color``."""
    if 0 <= x < px.shape[0]:
        px[_u(x)] = color


@_inline
def _blend(px, x, color, alpha):
    """SDL_gfx ``_putPixelAlpha`` (DEFAULT routine, 32 bpp, no alpha mask).

    Each channel becomes ``d + ((c - d) * alpha >> 8)`` (floor shift; the C
    unsigned wrap-around gives exactly this).
    """
    if x < 0 or x >= px.shape[0]:
        return
    d = np.int64(px[_u(x)])
    out = 0
    for shift in (16, 8, 0):
        dc = (d >> shift) & 255
        cc = (color >> shift) & 255
        out |= ((dc + (((cc - dc) * alpha) >> 8)) & 255) << shift
    px[_u(x)] = out
