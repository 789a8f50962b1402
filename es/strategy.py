"""The strategy interface, state (de)serialisation, and `make_strategy`.

Every strategy is a small object that holds only hyperparameters; everything that changes
during a run lives in a plain-data state (a dataclass of numpy arrays and scalars):

    state = strategy.init(centre, seed)          # centre float32 (n,), run seed int
    pop = strategy.ask(state)                    # Population for generation state.generation
    state = strategy.tell(state, pop, fitness)   # fitness float (popsize,), higher is better
    strategy.centre(state)                       # float32 (n,), the current search centre
    strategy.log_values(state)                   # {"sigma": float, "lr": float} for progress.csv
    arrays, meta = strategy.state_to_npz(state)  # dict[str, ndarray], JSON-able dict
    state = strategy.state_from_npz(arrays, meta)
    strategy.config()                            # JSON-able constructor settings

The generation counter and the run seed are in the state, so `ask` needs nothing else and a
state restored from a checkpoint continues the run bit for bit.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from .errors import UsageError
from .optim import OptState
from .population import Population


class Strategy(Protocol):
    name: str
    num_params: int
    popsize: int

    def init(self, centre: np.ndarray, seed: int) -> Any: ...
    def ask(self, state: Any) -> Population: ...
    def tell(self, state: Any, population: Population, fitness: np.ndarray) -> Any: ...
    def centre(self, state: Any) -> np.ndarray: ...
    def log_values(self, state: Any) -> dict[str, float]: ...
    def state_to_npz(self, state: Any) -> tuple[dict[str, np.ndarray], dict]: ...
    def state_from_npz(self, arrays: dict[str, np.ndarray], meta: dict) -> Any: ...
    def config(self) -> dict: ...


def dataclass_to_npz(state: Any) -> tuple[dict[str, np.ndarray], dict]:
    """Split a state dataclass into npz arrays and JSON scalars (an OptState is flattened as `opt.*`)."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        elif isinstance(value, OptState):
            meta[f"{f.name}.step"] = value.step
            for key, buf in value.buffers.items():
                arrays[f"{f.name}.{key}"] = buf
        else:
            meta[f.name] = value.item() if isinstance(value, np.generic) else value
    return arrays, meta


def dataclass_from_npz(cls: type, arrays: dict[str, np.ndarray], meta: dict) -> Any:
    """Inverse of `dataclass_to_npz` for the dataclass `cls`; raises UsageError on a missing field."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in arrays:
            values[f.name] = np.array(arrays[f.name])
        elif f"{f.name}.step" in meta:
            prefix = f"{f.name}."
            buffers = {k[len(prefix):]: np.array(v) for k, v in arrays.items() if k.startswith(prefix)}
            values[f.name] = OptState(int(meta[f"{f.name}.step"]), buffers)
        elif f.name in meta:
            values[f.name] = meta[f.name]
        else:
            raise UsageError(f"checkpoint lacks the field {f.name!r} of {cls.__name__}; was it written by another strategy?")
    return cls(**values)


def check_sizes(num_params: int, popsize: int, sigma: float, *, antithetic: bool) -> None:
    """Raise UsageError for impossible sizes (one line saying what to change)."""
    for label, value in (("num_params", num_params), ("popsize", popsize)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise UsageError(f"{label} must be a positive integer, got {value!r}")
    if antithetic and popsize % 2:
        raise UsageError(f"popsize must be even for antithetic sampling (pairs +eps/-eps), got {popsize}; use {popsize + 1}")
    if antithetic and popsize < 2:
        raise UsageError(f"popsize must be at least 2 for antithetic sampling, got {popsize}")
    if not np.isfinite(sigma) or sigma <= 0:
        raise UsageError(f"sigma must be a positive number, got {sigma!r}")


def check_fitness(population: Population, fitness: np.ndarray) -> np.ndarray:
    """Fitness as float64 (popsize,), or EvaluationError naming the first non-finite member."""
    from .errors import EvaluationError

    fitness = np.asarray(fitness, dtype=np.float64)
    if fitness.shape != (len(population),):
        raise UsageError(f"tell needs one fitness per member, shape ({len(population)},), got {fitness.shape}")
    bad = np.flatnonzero(~np.isfinite(fitness))
    if bad.size:
        i = int(bad[0])
        raise EvaluationError(
            f"member {i} of generation {population.generation} has fitness {fitness[i]}; the problem must return finite numbers"
        )
    return fitness


STRATEGY_NAMES = ("openai-es", "pgpe", "cma", "sep-cma")


def make_strategy(name: str, num_params: int, popsize: int, sigma: float, lr: float | None = None, **kwargs) -> Strategy:
    """Build a strategy by name.

    Args:
        name: "openai-es", "pgpe", "cma" (full CMA-ES) or "sep-cma" (diagonal CMA-ES).
        num_params: length n of the parameter vector.
        popsize: individuals per generation (even for openai-es and pgpe).
        sigma: initial noise standard deviation (in parameter units).
        lr: centre learning rate (OpenAI-ES: SGD/Adam step; PGPE: ClipUp step size);
            ignored by CMA-ES, which has no learning rate. None = the strategy's default.
        **kwargs: the strategy's other keyword settings (see each class).
    """
    from .cma_es import CMAES
    from .openai_es import OpenAIES
    from .pgpe import PGPE

    if lr is not None and name in ("openai-es", "pgpe"):
        kwargs["lr"] = lr
    try:
        if name == "openai-es":
            return OpenAIES(num_params, popsize, sigma, **kwargs)
        if name == "pgpe":
            return PGPE(num_params, popsize, sigma, **kwargs)
        if name in ("cma", "sep-cma"):
            return CMAES(num_params, popsize, sigma, diagonal=(name == "sep-cma"), **kwargs)
    except TypeError as e:  # an unknown keyword: say which strategy rejected it
        raise UsageError(f"bad settings for strategy {name!r}: {e}") from None
    raise UsageError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}")
