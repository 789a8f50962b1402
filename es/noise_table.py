"""The noise table: one float32 array of standard normals per run; a member's noise is a slice of it.

OpenAI-ES and PGPE perturb the centre with eps_k = values[o_k : o_k + n], where `values` is
the run's table and o_k an offset (Salimans et al. 2017 did the same with 250M floats).
Before, each member's noise was regenerated from a 128-bit seed: 4-7 ms per member on every
worker and 0.45-0.8 s per generation in the driver's update at CarRacing scale (456,640
parameters, popsize 200). With the table a worker reads one slice (~0.2 ms to build the
member), the gradient is one pass over 100 slices (~9 ms; ask + tell ~13 ms), and members
cross the wire as (offset, sign). Figures: `python -m benchmarks.es_scaling`.

Which table. `NoiseTable(seed, size)` names it: `size` float32 values from
`numpy.random.SeedSequence(seed, spawn_key=(seeding.NOISE_TABLE,))` (PCG64, one stream, so
a smaller table is a prefix of a larger one). It is light and picklable: that, not the
array, is what `SearchPoint.table` carries to workers. Offsets per (generation, pair) come
from `seeding.noise_offsets`, uniform in [0, size - n].

Size. `default_size(n)`: the smallest power of two >= 128 * n, at least 2**20, so the table
holds 128-256 times the parameters:

    num_params                    table     memory per copy
    456,640 (CarRacing, ABCD_lr)  2**26     256 MiB
    61,440 (Ant, ABCD_lr)         2**23      32 MiB
    <= 8,192                      2**20       4 MiB

Why that margin: two pairs of one generation read overlapping slices with probability
about 2n/size (<= 1/64 here); overlapping slices are shifted copies, uncorrelated element by
element, and the same offset twice (identical noise) has odds 1/(size - n) ~ 1e-8. A
table of a few n would hand out near-identical slices; a much larger one only costs memory
and build time (~1-2 s for 2**26). An explicit `noise_table_size` (a strategy setting,
recorded in config.json, since it changes the numbers) may trade this margin for memory
down to 16 * n; below that, or when n is as large as the table, it is a UsageError, never
a silent wrap-around. A table over half the machine's memory is refused when the strategy
is built (UsageError naming the size to use).

Memory per node. The driver builds the table once (its copy) and RayEvaluator puts it in
Ray's object store once per run; Ray copies it once to each node that runs a worker, and
every worker maps that copy read-only (`ray.get`, zero-copy) and keeps it. So a node holds
one table in its object store (the head node also the driver's copy), whatever its number
of workers. Ray spills to disk when its store is full; if even that fails, the run stops
with one line saying which node and what to do (`es.errors.ResourceError`).

Kernels. `weighted_sum` (OpenAI-ES's gradient), `weighted_sums_and_squares` (PGPE's) and
`perturb` (a member's parameters) are compiled with Numba (no fastmath, cached on disk).
The sums work on blocks of the output that stay in L1 cache, four pairs per pass, but each
output element adds its terms in pair order k = 0, 1, ..., K-1 whatever the blocking, so the
result is bit for bit the NumPy loop `out += w[k] * values[o[k]:o[k] + n]`.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numba import njit

from . import seeding
from .errors import ResourceError, UsageError
from .resources import physical_memory

MIN_SIZE = 2**20
"""The smallest automatic table (4 MiB): tiny problems still get well-separated slices."""
PER_PARAM = 128
"""The automatic table holds at least this many floats per parameter (see the module docstring)."""
MIN_PER_PARAM = 16
"""An explicit `noise_table_size` below this many floats per parameter is refused."""
_BLOCK = 4096  # output floats per block: 16 KB, kept in L1 while the pairs stream past
_KEEP = 2  # tables kept per process: the driver's current run (and one more, e.g. two runs in one test)


@dataclass(frozen=True)
class NoiseTable:
    """Names a run's table: `size` float32 standard normals derived from the run `seed`.

    What crosses the wire instead of the values; `load(table)` gives the values (float32
    (size,)) in any process.
    """

    seed: int
    size: int

    @property
    def nbytes(self) -> int:
        """Bytes of the values (4 per float)."""
        return 4 * self.size

    def offsets(self, generation: int, pairs: int, num_params: int) -> np.ndarray:
        """The slice starts of one generation's pairs: int64 (pairs,), each in [0, size - num_params]."""
        return seeding.noise_offsets(self.seed, generation, pairs, self.size - num_params + 1)


def mib(nbytes: int) -> str:
    """Bytes as a short "256 MiB" / "1.5 GiB" for messages."""
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def default_size(num_params: int) -> int:
    """The automatic table size in floats: the smallest power of two >= PER_PARAM * num_params, at least MIN_SIZE."""
    return max(MIN_SIZE, 1 << math.ceil(math.log2(PER_PARAM * int(num_params))))


def check_size(size: int | None, num_params: int) -> int:
    """The table size (floats) to use for `num_params` parameters: `size`, or `default_size` for None.

    UsageError (one line) for a size that is not a whole number, holds fewer than
    MIN_PER_PARAM * num_params floats, or takes over half of this machine's memory.
    """
    smallest = MIN_PER_PARAM * int(num_params)
    if size is None:
        size = default_size(num_params)
    elif isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise UsageError(f"noise_table_size must be a whole number of floats, got {size!r}")
    elif size < smallest:
        raise UsageError(f"noise_table_size {size} is too small for {num_params} parameters: a member's noise is a "
                         f"slice of {num_params} floats, so the table needs at least {MIN_PER_PARAM} x num_params = "
                         f"{smallest}; raise it or leave it unset (automatic: {default_size(num_params)})")
    size = int(size)
    total = physical_memory()
    if total is not None and 4 * size > total // 2:
        raise UsageError(f"the noise table ({size} floats, {mib(4 * size)}) would take over half of this machine's "
                         f"{mib(total)}; set noise_table_size lower (at least {smallest}) or use a larger machine")
    return size


def build(table: NoiseTable) -> np.ndarray:
    """The values of `table`: float32 (size,), read-only, generated here (~20 ns per float).

    ResourceError (one line) when the memory cannot be had.
    """
    generator = np.random.Generator(np.random.PCG64(seeding.noise_table_sequence(table.seed)))
    try:
        values = np.empty(table.size, np.float32)
        generator.standard_normal(table.size, dtype=np.float32, out=values)
    except MemoryError:
        raise ResourceError(f"no memory for the noise table ({mib(table.nbytes)}); free memory or set a smaller "
                            "noise_table_size") from None
    values.flags.writeable = False  # shared by the strategy and the evaluator: nobody may change it
    return values


_loaded: OrderedDict[NoiseTable, np.ndarray] = OrderedDict()
_lock = threading.Lock()


def load(table: NoiseTable) -> np.ndarray:
    """This process's values of `table` (float32 (size,), read-only): the copy it adopted or
    built before, else built now and kept (the newest few tables are kept)."""
    with _lock:
        values = _loaded.get(table)
        if values is None:
            values = build(table)
            _keep(table, values)
        else:
            _loaded.move_to_end(table)
        return values


def adopt(table: NoiseTable, values: np.ndarray) -> None:
    """Keep `values` (e.g. a worker's zero-copy view of Ray's object store) as this process's copy of `table`."""
    values = np.asarray(values)
    if values.dtype != np.float32 or values.shape != (table.size,):
        raise ValueError(f"values of {table} must be float32 ({table.size},), got {values.dtype} {values.shape}")
    with _lock:
        _keep(table, values)


def is_loaded(table: NoiseTable) -> bool:
    """Whether this process holds the values of `table` already."""
    return table in _loaded


def _keep(table: NoiseTable, values: np.ndarray) -> None:
    _loaded[table] = values
    _loaded.move_to_end(table)
    while len(_loaded) > _KEEP:
        _loaded.popitem(last=False)


# -- kernels ------------------------------------------------------------------------------

def weighted_sum(values: np.ndarray, offsets: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """sum_k weights[k] * values[offsets[k] : offsets[k] + n] as float32 (n,), in pair order k.

    values: float32 (size,); offsets: int (K,), each in [0, size - n]; weights: (K,), cast to
    float32. Pairs with weight 0 are skipped (adding 0 * x would change nothing).
    """
    offsets, weights = _check(values, offsets, weights, n)
    keep = weights != 0
    return _weighted_sum(values, offsets[keep], weights[keep], int(n))


def weighted_sums_and_squares(values: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray,
                              n: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum_k a[k] * z_k, sum_k b[k] * (z_k**2 - 1)), both float32 (n,), with z_k = values[offsets[k] : offsets[k] + n].

    PGPE's centre and stdev directions in one pass over the slices; a, b: (K,), cast to float32.
    """
    offsets, a = _check(values, offsets, a, n)
    b = np.ascontiguousarray(b, np.float32)
    if b.shape != a.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    keep = (a != 0) | (b != 0)
    return _weighted_sums_and_squares(values, offsets[keep], a[keep], b[keep], int(n))


def perturb(centre: np.ndarray, sigma: np.ndarray | np.float32, values: np.ndarray, offset: int, sign: int) -> np.ndarray:
    """centre + (sign * sigma) * values[offset : offset + n] as a new float32 (n,), in one pass.

    centre: float32 (n,); sigma: a float32 scalar or float32 (n,) (PGPE's stdev); sign: +1 or -1.
    """
    n = centre.shape[0]
    offset = int(offset)
    if not 0 <= offset <= values.shape[0] - n:
        raise ValueError(f"offset {offset} is outside the table of {values.shape[0]} floats for {n} parameters")
    centre = np.ascontiguousarray(centre, np.float32)
    if np.ndim(sigma) == 0:
        return _perturb_scalar(centre, np.float32(sign) * np.float32(sigma), values, offset)
    sigma = np.ascontiguousarray(sigma, np.float32)
    if sigma.shape != centre.shape:
        raise ValueError(f"sigma must be a scalar or of shape {centre.shape}, got {sigma.shape}")
    return _perturb_vector(centre, np.float32(sign), sigma, values, offset)


def _check(values: np.ndarray, offsets: np.ndarray, weights: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets as int64 and weights as float32, both (K,); ValueError for a slice outside the table."""
    if values.dtype != np.float32 or values.ndim != 1:
        raise ValueError(f"values must be float32 (size,), got {values.dtype} {values.shape}")
    offsets = np.ascontiguousarray(offsets, np.int64)
    weights = np.ascontiguousarray(weights, np.float32)
    if offsets.shape != weights.shape or offsets.ndim != 1:
        raise ValueError(f"offsets and weights must be (K,) each, got {offsets.shape} and {weights.shape}")
    if offsets.size and (offsets.min() < 0 or offsets.max() > values.shape[0] - n):
        raise ValueError(f"offsets must lie in [0, {values.shape[0] - n}] for slices of {n} floats")
    return offsets, weights


@njit(nogil=True, cache=True)
def _weighted_sum(values, offsets, weights, n):
    out = np.zeros(n, np.float32)
    pairs = offsets.shape[0]
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        o = out[start:stop]
        k = 0
        while k + 4 <= pairs:  # four slices per pass over the block; the terms still go in k order
            w0, w1, w2, w3 = weights[k], weights[k + 1], weights[k + 2], weights[k + 3]
            t0 = values[offsets[k] + start:offsets[k] + stop]
            t1 = values[offsets[k + 1] + start:offsets[k + 1] + stop]
            t2 = values[offsets[k + 2] + start:offsets[k + 2] + stop]
            t3 = values[offsets[k + 3] + start:offsets[k + 3] + stop]
            for i in range(stop - start):
                s = o[i]
                s += w0 * t0[i]
                s += w1 * t1[i]
                s += w2 * t2[i]
                s += w3 * t3[i]
                o[i] = s
            k += 4
        while k < pairs:
            w0 = weights[k]
            t0 = values[offsets[k] + start:offsets[k] + stop]
            for i in range(stop - start):
                o[i] += w0 * t0[i]
            k += 1
    return out


@njit(nogil=True, cache=True)
def _weighted_sums_and_squares(values, offsets, a, b, n):
    first = np.zeros(n, np.float32)
    second = np.zeros(n, np.float32)
    one = np.float32(1.0)
    pairs = offsets.shape[0]
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        f = first[start:stop]
        s = second[start:stop]
        k = 0
        while k + 4 <= pairs:  # as in _weighted_sum: four slices per pass, terms in k order
            a0, a1, a2, a3 = a[k], a[k + 1], a[k + 2], a[k + 3]
            b0, b1, b2, b3 = b[k], b[k + 1], b[k + 2], b[k + 3]
            t0 = values[offsets[k] + start:offsets[k] + stop]
            t1 = values[offsets[k + 1] + start:offsets[k + 1] + stop]
            t2 = values[offsets[k + 2] + start:offsets[k + 2] + stop]
            t3 = values[offsets[k + 3] + start:offsets[k + 3] + stop]
            for i in range(stop - start):
                z0, z1, z2, z3 = t0[i], t1[i], t2[i], t3[i]
                f[i] = (((f[i] + a0 * z0) + a1 * z1) + a2 * z2) + a3 * z3
                s[i] = (((s[i] + b0 * (z0 * z0 - one)) + b1 * (z1 * z1 - one)) + b2 * (z2 * z2 - one)) \
                    + b3 * (z3 * z3 - one)
            k += 4
        while k < pairs:
            a0, b0 = a[k], b[k]
            t0 = values[offsets[k] + start:offsets[k] + stop]
            for i in range(stop - start):
                z0 = t0[i]
                f[i] += a0 * z0
                s[i] += b0 * (z0 * z0 - one)
            k += 1
    return first, second


@njit(nogil=True, cache=True)
def _perturb_scalar(centre, scale, values, offset):
    out = np.empty_like(centre)
    t = values[offset:offset + centre.shape[0]]
    for i in range(centre.shape[0]):
        out[i] = centre[i] + scale * t[i]
    return out


@njit(nogil=True, cache=True)
def _perturb_vector(centre, sign, sigma, values, offset):
    out = np.empty_like(centre)
    t = values[offset:offset + centre.shape[0]]
    for i in range(centre.shape[0]):
        out[i] = centre[i] + (sign * sigma[i]) * t[i]
    return out
