"""PGPE (Sehnke et al. 2010) with ClipUp (Toklu et al. 2020), as in EvoTorch and EvoJAX.

The search distribution is N(centre, diag(stdev^2)). Antithetic pair k is
centre +/- stdev * z_k with z_k = standard_noise(seed_k, n). From shaped fitness w
(centered ranks by default), with K = popsize/2 pairs and b = mean(w):

    grad_centre = stdev * sum_k (w[2k] - w[2k+1]) / 2 * z_k / K
    grad_stdev  = stdev * sum_k ((w[2k] + w[2k+1]) / 2 - b) * (z_k**2 - 1) / K

(EvoTorch's formulas with scaled noise eps = stdev*z). The centre follows ClipUp (or
Adam/SGD); stdev moves by stdev_lr * grad_stdev, limited to a relative change of
`stdev_max_change` per generation (EvoTorch default 0.2), and kept positive.

ClipUp moves the centre about `lr` per generation whatever the gradient's size, so with a
constant lr the centre keeps jittering at that scale; for fine convergence use
`lr_decay` (lr *= lr_decay while lr > lr_limit, after each update; default off).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import seeding
from .errors import UsageError
from .openai_es import _check_centre
from .optim import OptState, make_optimizer
from .population import Perturbation, Population, SearchPoint, standard_noise
from .shaping import Shaping, get_shaping
from .strategy import check_fitness, check_sizes, dataclass_from_npz, dataclass_to_npz


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


class PGPE:
    """PGPE with a per-parameter stdev; see the module docstring for the update."""

    name = "pgpe"

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
    ):
        check_sizes(num_params, popsize, sigma, antithetic=True)
        if not lr > 0:
            raise UsageError(f"lr must be a positive number, got {lr!r}")
        if not 0 < stdev_max_change < 1:
            raise UsageError(f"stdev_max_change must be in (0, 1), got {stdev_max_change!r}")
        self.num_params, self.popsize = int(num_params), int(popsize)
        self.sigma0, self.lr0 = float(sigma), float(lr)
        self.optimizer = make_optimizer(optimizer, **(optimizer_kwargs or {}))
        self.shaping_name, self.shaping = get_shaping(shaping)
        self.stdev_lr, self.stdev_max_change = float(stdev_lr), float(stdev_max_change)
        self.lr_decay, self.lr_limit = float(lr_decay), float(lr_limit)

    def init(self, centre: np.ndarray, seed: int) -> PGPEState:
        centre = _check_centre(centre, self.num_params)
        stdev = np.full(self.num_params, self.sigma0, np.float32)
        return PGPEState(centre, stdev, self.optimizer.init(self.num_params), self.lr0, 0, seeding.check_seed(seed))

    def ask(self, state: PGPEState) -> Population:
        pairs = self.popsize // 2
        seeds = seeding.noise_seeds(state.seed, state.generation, pairs)
        members = tuple(Perturbation(s, sign) for s in seeds for sign in (1, -1))
        groups = tuple(k for k in range(pairs) for _ in range(2))
        return Population(state.generation, SearchPoint(state.centre, state.stdev), members, groups)

    def tell(self, state: PGPEState, population: Population, fitness: np.ndarray) -> PGPEState:
        fitness = check_fitness(population, fitness)
        w = self.shaping(fitness)
        centre_w = (w[0::2] - w[1::2]) / 2
        stdev_w = (w[0::2] + w[1::2]) / 2 - w.mean()
        n, pairs = self.num_params, self.popsize // 2
        sum_z = np.zeros(n, np.float32)
        sum_z2 = np.zeros(n, np.float32)
        for member, a, b in zip(population.members[0::2], centre_w, stdev_w):
            z = standard_noise(member.noise_seed, n)
            if a != 0.0:
                sum_z += np.float32(a) * z
            if b != 0.0:
                z *= z
                z -= np.float32(1.0)
                sum_z2 += np.float32(b) * z
        grad_centre = state.stdev * sum_z / np.float32(pairs)
        grad_stdev = state.stdev * sum_z2 / np.float32(pairs)
        update, opt = self.optimizer.step(state.opt, grad_centre, state.lr)
        stdev = state.stdev + np.float32(self.stdev_lr) * grad_stdev
        low = state.stdev * np.float32(1 - self.stdev_max_change)
        high = state.stdev * np.float32(1 + self.stdev_max_change)
        stdev = np.clip(stdev, low, high).astype(np.float32)
        lr = state.lr * self.lr_decay if state.lr > self.lr_limit else state.lr
        return PGPEState(state.centre + update, stdev, opt, lr, state.generation + 1, state.seed)

    def centre(self, state: PGPEState) -> np.ndarray:
        return state.centre

    def log_values(self, state: PGPEState) -> dict[str, float]:
        return {"sigma": float(state.stdev.mean(dtype=np.float64)), "lr": state.lr}

    def state_to_npz(self, state: PGPEState):
        return dataclass_to_npz(state)

    def state_from_npz(self, arrays, meta) -> PGPEState:
        return dataclass_from_npz(PGPEState, arrays, meta)

    def config(self) -> dict:
        return {
            "name": self.name, "num_params": self.num_params, "popsize": self.popsize,
            "sigma": self.sigma0, "lr": self.lr0, "optimizer": self.optimizer.config(),
            "shaping": self.shaping_name, "stdev_lr": self.stdev_lr, "stdev_max_change": self.stdev_max_change,
            "lr_decay": self.lr_decay, "lr_limit": self.lr_limit,
        }
