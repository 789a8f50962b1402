"""OpenAI-ES (Salimans et al. 2017) as the Hebbian paper uses it (Najarro & Risi 2020).

Antithetic sampling: pair k is (centre + sigma*eps_k, centre - sigma*eps_k), both on the
same episodes. The ascent direction from shaped fitness w (by default the paper's
`standardized_ranks`: centred ranks, then mean 0 and std 1) is

    g = 1 / (popsize * sigma) * sum_k (w[2k] - w[2k+1]) * eps_k          float32 (n,)

minus `weight_decay * centre` when weight decay is on, and the centre moves by
`optimizer.step(g, lr)` (SGD in the paper, Adam optional). After each update, as in the
paper's code: lr *= lr_decay while lr > lr_limit, sigma *= sigma_decay while sigma > sigma_limit
(defaults 0.995 / 0.001 and 0.999 / 0.01).

eps_k is regenerated from its 128-bit seed (`standard_noise`), so workers receive only the
centre once per generation and a (seed, sign) per member. At 456,640 parameters and
popsize 200 the update regenerates 100 vectors: a few tenths of a second on one core.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import seeding
from .errors import UsageError
from .optim import SGD, Adam, OptState, make_optimizer
from .population import Perturbation, Population, SearchPoint, standard_noise
from .shaping import Shaping, get_shaping
from .strategy import check_fitness, check_sizes, dataclass_from_npz, dataclass_to_npz


@dataclass
class OpenAIESState:
    """centre float32 (n,); opt: optimiser state; sigma, lr: current values; generation: next
    generation to ask; seed: the run seed (noise seeds derive from it)."""

    centre: np.ndarray
    opt: OptState
    sigma: float
    lr: float
    generation: int
    seed: int


def estimate_gradient(noise_seeds: list[int], pair_weights: np.ndarray, sigma: float, popsize: int, n: int) -> np.ndarray:
    """sum_k pair_weights[k] * eps_k / (popsize * sigma), float32 (n,); eps_k = standard_noise(noise_seeds[k], n)."""
    grad = np.zeros(n, np.float32)
    for noise_seed, weight in zip(noise_seeds, pair_weights):
        if weight != 0.0:  # tied pairs (common with centered ranks on flat fitness) cost nothing
            grad += np.float32(weight) * standard_noise(noise_seed, n)
    grad *= np.float32(1.0 / (popsize * sigma))
    return grad


class OpenAIES:
    """OpenAI-ES with antithetic sampling; see the module docstring for the update."""

    name = "openai-es"

    def __init__(
        self,
        num_params: int,
        popsize: int,
        sigma: float = 0.1,
        lr: float = 0.2,
        *,
        optimizer: str = "sgd",
        optimizer_kwargs: dict | None = None,
        shaping: str | Shaping = "standardized_ranks",
        weight_decay: float = 0.0,
        lr_decay: float = 0.995,
        lr_limit: float = 0.001,
        sigma_decay: float = 0.999,
        sigma_limit: float = 0.01,
    ):
        check_sizes(num_params, popsize, sigma, antithetic=True)
        if not lr > 0:
            raise UsageError(f"lr must be a positive number, got {lr!r}")
        if weight_decay < 0:
            raise UsageError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.num_params, self.popsize = int(num_params), int(popsize)
        self.sigma0, self.lr0 = float(sigma), float(lr)
        self.optimizer: SGD | Adam = make_optimizer(optimizer, **(optimizer_kwargs or {}))
        self.shaping_name, self.shaping = get_shaping(shaping)
        self.weight_decay = float(weight_decay)
        self.lr_decay, self.lr_limit = float(lr_decay), float(lr_limit)
        self.sigma_decay, self.sigma_limit = float(sigma_decay), float(sigma_limit)

    def init(self, centre: np.ndarray, seed: int) -> OpenAIESState:
        centre = _check_centre(centre, self.num_params)
        return OpenAIESState(centre, self.optimizer.init(self.num_params), self.sigma0, self.lr0, 0, seeding.check_seed(seed))

    def ask(self, state: OpenAIESState) -> Population:
        pairs = self.popsize // 2
        seeds = seeding.noise_seeds(state.seed, state.generation, pairs)
        members = tuple(Perturbation(s, sign) for s in seeds for sign in (1, -1))
        groups = tuple(k for k in range(pairs) for _ in range(2))
        shared = SearchPoint(state.centre, np.float32(state.sigma))
        return Population(state.generation, shared, members, groups)

    def tell(self, state: OpenAIESState, population: Population, fitness: np.ndarray) -> OpenAIESState:
        fitness = check_fitness(population, fitness)
        weights = self.shaping(fitness)
        pair_weights = weights[0::2] - weights[1::2]
        seeds = [m.noise_seed for m in population.members[0::2]]
        grad = estimate_gradient(seeds, pair_weights, state.sigma, self.popsize, self.num_params)
        if self.weight_decay:
            grad -= np.float32(self.weight_decay) * state.centre
        update, opt = self.optimizer.step(state.opt, grad, state.lr)
        lr = state.lr * self.lr_decay if state.lr > self.lr_limit else state.lr
        sigma = state.sigma * self.sigma_decay if state.sigma > self.sigma_limit else state.sigma
        return OpenAIESState(state.centre + update, opt, sigma, lr, state.generation + 1, state.seed)

    def centre(self, state: OpenAIESState) -> np.ndarray:
        return state.centre

    def log_values(self, state: OpenAIESState) -> dict[str, float]:
        return {"sigma": state.sigma, "lr": state.lr}

    def state_to_npz(self, state: OpenAIESState):
        return dataclass_to_npz(state)

    def state_from_npz(self, arrays, meta) -> OpenAIESState:
        return dataclass_from_npz(OpenAIESState, arrays, meta)

    def config(self) -> dict:
        return {
            "name": self.name, "num_params": self.num_params, "popsize": self.popsize,
            "sigma": self.sigma0, "lr": self.lr0, "optimizer": self.optimizer.config(),
            "shaping": self.shaping_name, "weight_decay": self.weight_decay,
            "lr_decay": self.lr_decay, "lr_limit": self.lr_limit,
            "sigma_decay": self.sigma_decay, "sigma_limit": self.sigma_limit,
        }


def _check_centre(centre: np.ndarray, n: int) -> np.ndarray:
    centre = np.asarray(centre)
    if centre.shape != (n,):
        raise UsageError(f"initial parameters must have shape ({n},), got {centre.shape}")
    if not np.all(np.isfinite(centre)):
        raise UsageError("initial parameters contain NaN or inf")
    return centre.astype(np.float32)  # a copy, so the caller's array is never aliased
