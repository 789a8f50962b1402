"""Rows of runs: how the raster holds a canvas row, and the Numba settings of its kernels.

A canvas row is a short list of runs of one colour each (see the comment above
:func:`_run_at`); painting a polygon's span or an anti-aliased edge pixel edits a few
dozen integers instead of storing the row's pixels. Colours are packed
``r << 32 | g << 16 | b`` (:func:`_pack`) so the shrink sums three channels with one add.
"""

from __future__ import annotations

import numpy as np
from numba import njit


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
# their bodies (the frame took 544 us with the helpers alone inlined, 430-480
# us with the row functions too). Two ways, for compile time:
#
# * ``_inline``, the small helpers: inlined at Numba's level (its IR copied
#   into every call site, then compiled with the caller).
# * ``_row``, the row functions (one polygon kind, the shrink, the text):
#   compiled once each and inlined by LLVM (``forceinline``: LLVM's
#   alwaysinline). Numba's IR inlining copies a callee's whole IR, its own
#   inlined helpers included, at every call site and processes it again, so
#   with the row functions inlined that way too the frame kernel took ~70 s
#   to compile from a fresh cache and the package's three entry points 139 s
#   (each in its own process; mostly copying IR); this way the kernel takes
#   ~30 s and all three, in one process, ~50 s. The frames are
#   the same and as fast (paired on recorded frames: 0.99-1.00x); LLVM
#   inlining _aaline_row as well saved 6 s more but cost 1-2% a frame.
#
# A call site must pass the argument types the other call sites pass (an
# int64 variable, not a literal 0), or the row function compiles again.
_inline = _jit(inline="always")
# An older Numba without forceinline: inlined at Numba's level (same results, slower to compile).
_row = _jit(forceinline=True) if _option_available("forceinline") else _inline


@_inline
def _i16(v):
    return ((v + 32768) & 0xFFFF) - 32768


@_inline
def _i32(v):
    return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648


@_inline
def _pack(rgb):
    """0xRRGGBB -> the row buffers' pixel ``r << 32 | g << 16 | b``.

    16-bit lanes let smoothscale's sums of whole pixels (<= 11 * 255) be
    taken for all three channels with one 64-bit add per pixel.
    """
    return ((rgb & 0xFF0000) << 16) | ((rgb & 0xFF00) << 8) | (rgb & 0xFF)


@_inline
def _unpack(pixel):
    """Row-buffer pixel -> 0xRRGGBB."""
    return ((pixel >> 16) & 0xFF0000) | ((pixel >> 8) & 0xFF00) | (pixel & 0xFF)


# A canvas row being painted is a list of runs of one colour each: ``row``
# (3, capacity) int64 holds run starts (ascending, the first at pixel 0),
# packed colours and palette entries (a row of the frame's colour tables, see
# _colour_tables, or -1), and ``meta`` (2,) int64 the run count and the row's
# width. A run of a palette colour that covers whole smoothscale windows is
# shrunk by copying that colour's precomputed outputs; everything else is
# summed from the runs. Canvas rows hold a handful of runs (5-15 in steady
# driving), so painting a polygon's span or an outline pixel moves a few
# dozen integers instead of storing hundreds of pixels.


@_inline
def _run_at(row, count, x):
    """Index of the run holding pixel ``x``: the last run starting at or before it."""
    i = 0
    while i + 1 < count and row[0, i + 1] <= x:
        i += 1
    return i


@_inline
def _clear(row, meta, color, palette):
    """The whole row becomes one run of ``color``."""
    row[0, 0], row[1, 0], row[2, 0] = 0, color, palette
    meta[0] = 1


@_inline
def _move_runs(row, rest, dest, count):
    """Move runs ``rest..count - 1`` to start at ``dest`` (either way; the
    copy runs in the direction that never overwrites a run before it moves)."""
    moved = count - rest
    if dest < rest:
        for i in range(moved):
            row[0, dest + i], row[1, dest + i], row[2, dest + i] = (
                row[0, rest + i], row[1, rest + i], row[2, rest + i])
    elif dest > rest:
        for i in range(moved - 1, -1, -1):
            row[0, dest + i], row[1, dest + i], row[2, dest + i] = (
                row[0, rest + i], row[1, rest + i], row[2, rest + i])


@_inline
def _fill(row, meta, x1, x2, color, palette):
    """Pixels ``x1..x2`` (inclusive, clipped to the row) become ``color``.

    The runs the span covers are replaced by one (merged with a neighbour of
    the same colour); the run holding pixel ``x2 + 1`` restarts there.
    """
    width = meta[1]
    x1, x2 = max(x1, 0), min(x2, width - 1)
    if x1 > x2:
        return
    count = meta[0]
    first = _run_at(row, count, x1)
    at = first if row[0, first] == x1 else first + 1  # where the new run goes
    merge_left = at > 0 and row[1, at - 1] == color
    if merge_left and row[2, at - 1] < 0:
        row[2, at - 1] = palette
    tail = x2 + 1 < width  # pixels after the span keep their colour
    last = first
    if tail:
        while last + 1 < count and row[0, last + 1] <= x2 + 1:
            last += 1
    else:
        last = count - 1
    tail_color, tail_palette = row[1, last], row[2, last]
    tail_run = tail and tail_color != color
    if tail and not tail_run and palette < 0:  # the tail merges into the new run
        palette = tail_palette
    rest = last + 1  # the first untouched run
    dest = at + (0 if merge_left else 1) + (1 if tail_run else 0)
    _move_runs(row, rest, dest, count)
    put = at
    if not merge_left:
        row[0, put], row[1, put], row[2, put] = x1, color, palette
        put += 1
    if tail_run:
        row[0, put], row[1, put], row[2, put] = x2 + 1, tail_color, tail_palette
    meta[0] = dest + count - rest


@_inline
def _set(row, meta, x, color):
    """Set pixel ``x`` (ignored off the row) to ``color``."""
    _fill(row, meta, x, x, color, -1)


@_inline
def _blend(row, meta, x, color, alpha):
    """SDL_gfx ``_putPixelAlpha`` (DEFAULT routine, 32 bpp, no alpha mask).

    Each channel becomes ``d + ((c - d) * alpha >> 8)`` (floor shift; the C
    unsigned wrap-around gives exactly this). Colours are packed (see _pack).
    """
    width = meta[1]
    if x < 0 or x >= width:
        return
    count = meta[0]
    i = _run_at(row, count, x)
    d = row[1, i]
    out = 0
    for shift in (32, 16, 0):
        dc = (d >> shift) & 255
        cc = (color >> shift) & 255
        out |= ((dc + (((cc - dc) * alpha) >> 8)) & 255) << shift
    if out == d:
        return
    # Pixel x of run i becomes its own run: the run splits into up to three.
    first = row[0, i] == x
    last = (row[0, i + 1] if i + 1 < count else width) == x + 1
    if first and last:
        row[1, i], row[2, i] = out, -1
        return
    opened = 1 if first or last else 2
    _move_runs(row, i + 1, i + 1 + opened, count)
    at = i if first else i + 1
    if not last:  # the rest of the run restarts after x
        row[0, at + 1], row[1, at + 1], row[2, at + 1] = x + 1, d, row[2, i]
    row[0, at], row[1, at], row[2, at] = x, out, -1
    meta[0] = count + opened


@njit(cache=True)
def _packed_colors(colors):
    packed = np.empty(colors.shape[0], np.int64)
    for i in range(colors.shape[0]):
        packed[i] = _pack(colors[i])
    return packed
