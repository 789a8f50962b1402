"""Fitness shaping: functions from raw fitness (P,) to the weights (P,) an ES update uses.

Swap one in by name (`SHAPINGS[name]`) or pass any function with the same shape contract.
Higher fitness is better; the output has no units.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import UsageError

Shaping = Callable[[np.ndarray], np.ndarray]


def centered_ranks(fitness: np.ndarray) -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5] (Salimans et al. 2017), float64 (P,).

    Ties share their average rank, so two members with equal fitness get equal weight and an
    antithetic pair that ties contributes nothing (argsort ranks would break the tie by index
    and inject a spurious gradient).
    """
    from scipy.stats import rankdata  # imported here, not for a cycle: scipy.stats costs ~1 s at every script start

    fitness = np.asarray(fitness, dtype=np.float64)
    if fitness.size < 2:
        return np.zeros_like(fitness)
    ranks = rankdata(fitness, method="average") - 1.0  # 0 .. P-1
    return ranks / (fitness.size - 1) - 0.5


def z_score(fitness: np.ndarray) -> np.ndarray:
    """(f - mean) / std, float64 (P,); all zeros when every fitness is equal."""
    fitness = np.asarray(fitness, dtype=np.float64)
    std = fitness.std()
    if std == 0.0:
        return np.zeros_like(fitness)
    return (fitness - fitness.mean()) / std


def standardized_ranks(fitness: np.ndarray) -> np.ndarray:
    """Centred ranks, then standardised to mean 0 and std 1, float64 (P,).

    The Hebbian paper's shaping (Najarro & Risi 2020, `_update_coeffs` of the reference
    code): at population 200 it makes every ES step about 3.4x larger than centred ranks
    alone. All zeros when every fitness is equal (the reference raises there instead).
    Ties share their average rank, as in `centered_ranks`; the reference's argsort ranks
    break ties by position, which only differs when two members tie exactly.
    """
    return z_score(centered_ranks(fitness))


def raw(fitness: np.ndarray) -> np.ndarray:
    """The fitness itself, float64 (P,) (unbiased gradient estimates, used by tests)."""
    return np.asarray(fitness, dtype=np.float64).copy()


SHAPINGS: dict[str, Shaping] = {"centered_ranks": centered_ranks, "standardized_ranks": standardized_ranks,
                                 "z_score": z_score, "raw": raw}


def get_shaping(shaping: str | Shaping) -> tuple[str, Shaping]:
    """Resolve a shaping given by name or as a function; returns (name for config.json, function)."""
    if callable(shaping):
        return getattr(shaping, "__name__", repr(shaping)), shaping
    try:
        return shaping, SHAPINGS[shaping]
    except KeyError:
        raise UsageError(f"unknown fitness shaping {shaping!r}; choose one of {sorted(SHAPINGS)}") from None
