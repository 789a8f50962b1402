"""The interface every encoder of pixel observations follows.

An encoder sits in front of the plastic layers. Its evolved parameters (if any) are a slice
of the agent's flat float32 parameter vector, handed over as a view with `set_params`;
frozen (pretrained) encoders have `num_params == 0`. Acting calls `encode` once per
environment step on one observation, single-threaded and without autograd.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """What an agent needs of an encoder.

    Attributes:
        obs_shape: the observation it takes, e.g. (3, 84, 84) float32 in [0, 1].
        num_features: length of the feature vector it returns.
        num_params: evolved parameters it takes from the flat vector (0 when frozen).
    """

    obs_shape: tuple[int, ...]
    num_features: int
    num_params: int

    def set_params(self, flat: np.ndarray) -> None:
        """Use `flat` (float32, shape (num_params,)) as parameters, without copying where possible."""

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """Map one observation of shape `obs_shape` to float32 features of shape (num_features,)."""
