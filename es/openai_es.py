"""OpenAI-ES (Salimans et al. 2017) as the Hebbian paper uses it (Najarro & Risi 2020).

Antithetic sampling: pair k is (centre + sigma*eps_k, centre - sigma*eps_k), both on the
same episodes. The ascent direction from shaped fitness w (by default the paper's
`standardized_ranks`: centred ranks, then mean 0 and std 1) is

    g = 1 / (popsize * sigma) * sum_k (w[2k] - w[2k+1]) * eps_k          float32 (n,)

minus `weight_decay * centre` when weight decay is on, and the centre moves by
`optimizer.step(g, lr)` (SGD in the paper, Adam optional). After each update, as in the
paper's code: lr *= lr_decay while lr > lr_limit, sigma *= sigma_decay while sigma > sigma_limit
(defaults 0.995 / 0.001 and 0.999 / 0.01).

eps_k is the slice of the run's noise table at pair k's offset (`es.noise_table`), so
workers receive the centre once per generation and an (offset, sign) per member, and the
gradient is one compiled pass over the K slices: ~9 ms at 456,640 parameters and popsize
200 (regenerating the noise from seeds took 0.45-0.8 s).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import noise_table
from .errors import UsageError
from .optim import SGD, Adam, OptState, make_optimizer
from .population import Population, SearchPoint
from .shaping import Shaping
from .strategy import Strategy, antithetic_population, pair_offsets


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


def estimate_gradient(values: np.ndarray, offsets: np.ndarray, pair_weights: np.ndarray, sigma: float,
                      popsize: int, n: int) -> np.ndarray:
    """sum_k pair_weights[k] * eps_k / (popsize * sigma), float32 (n,), with eps_k = values[offsets[k] : offsets[k] + n].

    values: the noise table, float32 (size,); offsets: int (K,); pair_weights: (K,), as float32.
    """
    grad = noise_table.weighted_sum(values, offsets, pair_weights, n)
    grad *= np.float32(1.0 / (popsize * sigma))
    return grad


class OpenAIES(Strategy):
    """OpenAI-ES with antithetic sampling; see the module docstring for the update."""

    name = "openai-es"
    state_class = OpenAIESState
    antithetic = True
    hyperparameters = ("lr", "optimizer", "shaping", "weight_decay", "lr_decay", "lr_limit", "sigma_decay", "sigma_limit",
                       "noise_table_size")

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
        noise_table_size: int | None = None,
    ):
        super().__init__(num_params, popsize, sigma, shaping=shaping, noise_table_size=noise_table_size)
        if not lr > 0:
            raise UsageError(f"lr must be a positive number, got {lr!r}")
        if weight_decay < 0:
            raise UsageError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.lr0 = float(lr)
        self.optimizer: SGD | Adam = make_optimizer(optimizer, **(optimizer_kwargs or {}))
        self.weight_decay = float(weight_decay)
        self.lr_decay, self.lr_limit = float(lr_decay), float(lr_limit)
        self.sigma_decay, self.sigma_limit = float(sigma_decay), float(sigma_limit)

    def _init(self, centre: np.ndarray, seed: int) -> OpenAIESState:
        return OpenAIESState(centre, self.optimizer.init(self.num_params), self.sigma0, self.lr0, 0, seed)

    def ask(self, state: OpenAIESState) -> Population:
        shared = SearchPoint(state.centre, np.float32(state.sigma), self.noise_table(state))
        return antithetic_population(state, self.popsize, shared)

    def _update(self, state: OpenAIESState, population: Population, weights: np.ndarray) -> OpenAIESState:
        pair_weights = weights[0::2] - weights[1::2]
        values = noise_table.load(population.shared.table)
        grad = estimate_gradient(values, pair_offsets(population), pair_weights, state.sigma, self.popsize, self.num_params)
        if self.weight_decay:
            grad -= np.float32(self.weight_decay) * state.centre
        update, opt = self.optimizer.step(state.opt, grad, state.lr)
        lr = state.lr * self.lr_decay if state.lr > self.lr_limit else state.lr
        sigma = state.sigma * self.sigma_decay if state.sigma > self.sigma_limit else state.sigma
        return dataclasses.replace(state, centre=state.centre + update, opt=opt, sigma=sigma, lr=lr)
