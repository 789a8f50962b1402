"""What `es` optimises: any picklable object with this shape.

`es` never imports the Hebbian agents or the environments; the run loop and the evaluators
only call `evaluate` with a parameter vector and a few integer seeds.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Problem(Protocol):
    """A fitness problem (higher fitness is better).

    Attributes:
        num_params: length of the parameter vector.
    """

    num_params: int

    def initial_params(self, seed: int) -> np.ndarray:
        """Starting centre of the search, float32 of shape (num_params,), a pure function of `seed`."""

    def evaluate(self, params: np.ndarray, seeds: Sequence[int]) -> tuple[float, int, tuple[float, ...]]:
        """Score `params` (float32, (num_params,)) on one episode per seed.

        Must be a pure function of its arguments (the same call gives the same numbers in
        any process), so that evaluations can be retried and spread over workers.
        Returns (fitness, environment steps taken, per-episode returns).
        """
