"""PGPE (Sehnke et al. 2010) with ClipUp (Toklu et al. 2020), as in EvoTorch and EvoJAX.

The search distribution is N(centre, diag(stdev^2)). Antithetic pair k is
centre +/- stdev * z_k, z_k the slice of the run's noise table at pair k's offset
(`es.noise_table`). From shaped fitness w
(centered ranks by default), with K = popsize/2 pairs and b = mean(w):

    grad_centre = stdev * sum_k (w[2k] - w[2k+1]) / 2 * z_k / K
    grad_stdev  = stdev * sum_k ((w[2k] + w[2k+1]) / 2 - b) * (z_k**2 - 1) / K

(EvoTorch's formulas with scaled noise eps = stdev*z; both sums in one compiled pass over
the slices, `noise_table.weighted_sums_and_squares`). The centre follows ClipUp (or
Adam/SGD); stdev moves by stdev_lr * grad_stdev, limited to a relative change of
`stdev_max_change` per generation (EvoTorch default 0.2), and kept positive.

ClipUp moves the centre about `lr` per generation whatever the gradient's size, so with a
constant lr the centre keeps jittering at that scale; for fine convergence use
`lr_decay` (lr *= lr_decay while lr > lr_limit, after each update; default off).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import noise_table
from .errors import UsageError
from .optim import OptState, make_optimizer
from .population import Population, SearchPoint
from .shaping import Shaping
from .strategy import Strategy, antithetic_population, pair_offsets


@dataclass
class PGPEState:
    """centre, stdev: float32 (n,); opt: optimiser state; lr: centre step size;
    generation: next generation to ask; seed: the run seed."""

    centre: np.ndarray
    stdev: np.ndarray
    opt: OptState
    lr: float
    generation: int
    seed: int


class PGPE(Strategy):
    """PGPE with a per-parameter stdev; see the module docstring for the update."""

    name = "pgpe"
    state_class = PGPEState
    antithetic = True
    hyperparameters = ("lr", "optimizer", "shaping", "stdev_lr", "stdev_max_change", "lr_decay", "lr_limit",
                       "noise_table_size")

    def __init__(
        self,
        num_params: int,
        popsize: int,
        sigma: float = 0.1,
        lr: float = 0.1,
        *,
        optimizer: str = "clipup",
        optimizer_kwargs: dict | None = None,
        shaping: str | Shaping = "centered_ranks",
        stdev_lr: float = 0.1,
        stdev_max_change: float = 0.2,
        lr_decay: float = 1.0,
        lr_limit: float = 0.0,
        noise_table_size: int | None = None,
    ):
        super().__init__(num_params, popsize, sigma, shaping=shaping, noise_table_size=noise_table_size)
        if not lr > 0:
            raise UsageError(f"lr must be a positive number, got {lr!r}")
        if not 0 < stdev_max_change < 1:
            raise UsageError(f"stdev_max_change must be in (0, 1), got {stdev_max_change!r}")
        self.lr0 = float(lr)
        self.optimizer = make_optimizer(optimizer, **(optimizer_kwargs or {}))
        self.stdev_lr, self.stdev_max_change = float(stdev_lr), float(stdev_max_change)
        self.lr_decay, self.lr_limit = float(lr_decay), float(lr_limit)

    def _init(self, centre: np.ndarray, seed: int) -> PGPEState:
        stdev = np.full(self.num_params, self.sigma0, np.float32)
        return PGPEState(centre, stdev, self.optimizer.init(self.num_params), self.lr0, 0, seed)

    def ask(self, state: PGPEState) -> Population:
        return antithetic_population(state, self.popsize, SearchPoint(state.centre, state.stdev, self.noise_table(state)))

    def _update(self, state: PGPEState, population: Population, w: np.ndarray) -> PGPEState:
        centre_w = (w[0::2] - w[1::2]) / 2
        stdev_w = (w[0::2] + w[1::2]) / 2 - w.mean()
        pairs = self.popsize // 2
        sum_z, sum_z2 = noise_table.weighted_sums_and_squares(
            noise_table.load(population.shared.table), pair_offsets(population), centre_w, stdev_w, self.num_params)
        grad_centre = state.stdev * sum_z / np.float32(pairs)
        grad_stdev = state.stdev * sum_z2 / np.float32(pairs)
        update, opt = self.optimizer.step(state.opt, grad_centre, state.lr)
        stdev = state.stdev + np.float32(self.stdev_lr) * grad_stdev
        low = state.stdev * np.float32(1 - self.stdev_max_change)
        high = state.stdev * np.float32(1 + self.stdev_max_change)
        stdev = np.clip(stdev, low, high).astype(np.float32)
        lr = state.lr * self.lr_decay if state.lr > self.lr_limit else state.lr
        return dataclasses.replace(state, centre=state.centre + update, stdev=stdev, opt=opt, lr=lr)

    def log_values(self, state: PGPEState) -> dict[str, float]:
        return {"sigma": float(state.stdev.mean(dtype=np.float64)), "lr": state.lr}
