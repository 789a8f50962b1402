"""What `ask` hands out, and the pure function that turns it into parameter vectors.

A generation is described by one `shared` object (shipped once per generation, e.g. with
`ray.put`) and one light `member` per individual. Workers call
`materialize(shared, member)` to build the float32 (n,) parameter vector themselves:

    SearchPoint(centre, sigma, table) + Perturbation(offset, sign)
        -> centre + sign * sigma * values[offset : offset + n]   (values: the run's noise table)
    SearchPoint(centre, sigma) + Perturbation(0, 0)  (CENTRE)
        -> centre                                         (held-out evaluation)
    None + Explicit(params)
        -> params          (CMA-ES: a full vector per member; fine up to ~10k params)

`SearchPoint.table` only names the noise table (run seed and size); each process holds the
values once (`es.noise_table.load`): the driver builds them, Ray workers map them from the
object store (see `es.evaluation.RayEvaluator`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from . import noise_table
from .noise_table import NoiseTable


@dataclass(frozen=True)
class SearchPoint:
    """Shared per-generation data: `centre` float32 (n,), `sigma` float32 scalar or (n,), and
    `table`, the noise table the members' offsets point into (None when no member needs one)."""

    centre: np.ndarray
    sigma: np.ndarray | np.float32
    table: NoiseTable | None = None


@dataclass(frozen=True)
class Perturbation:
    """An individual as (offset, sign): where its noise starts in the noise table (int) and
    +1 / -1 (0 = the centre itself)."""

    offset: int
    sign: int


@dataclass(frozen=True)
class Explicit:
    """An individual as a full float32 (n,) vector (CMA-ES only)."""

    params: np.ndarray


Member = Union[Perturbation, Explicit]
CENTRE = Perturbation(0, 0)


@dataclass(frozen=True)
class Population:
    """One generation as `ask` returns it.

    Attributes:
        generation: index of this generation (0-based).
        shared: the object every member needs (None for CMA-ES).
        members: one descriptor per individual, length popsize.
        groups: env-seed group of each member (length popsize); members of one group
            (an antithetic pair) are evaluated on the same episodes.
    """

    generation: int
    shared: SearchPoint | None
    members: tuple[Member, ...]
    groups: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.members)


def materialize(shared: SearchPoint | None, member: Member) -> np.ndarray:
    """The parameter vector float32 (n,) of `member`; a pure function of its arguments."""
    if isinstance(member, Explicit):
        return np.array(member.params, dtype=np.float32)  # a copy: Ray hands out read-only buffers
    centre = shared.centre
    if member.sign == 0:
        return np.array(centre, dtype=np.float32)  # a copy: Ray hands out read-only buffers
    return noise_table.perturb(centre, shared.sigma, noise_table.load(shared.table), member.offset, member.sign)
