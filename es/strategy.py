"""The strategy base class: the bookkeeping every evolution strategy shares.

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

`Strategy` does the rest once, as evosax's base class does: it checks the sizes, the
starting centre, the seed and the fitness, applies the fitness shaping, advances the
generation, and turns a state dataclass into npz arrays + JSON and back. A strategy's own
file is then its maths: a state dataclass, `_init` (the state at generation 0), `ask`, and
`_update` (the new state from the shaped fitness). `antithetic_population` is the ask of
the mirrored-sampling strategies (OpenAI-ES, PGPE), whose noise is a slice of the run's
noise table (`es.noise_table`). The registry of strategies by name,
`make_strategy`, is in `es.strategies`; this module imports no strategy.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from . import noise_table, seeding
from .errors import EvaluationError, UsageError
from .noise_table import NoiseTable
from .optim import OptState
from .population import Perturbation, Population, SearchPoint
from .shaping import Shaping, get_shaping


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


def antithetic_population(state: Any, popsize: int, shared: SearchPoint) -> Population:
    """Mirrored sampling: pair k is (shared +eps_k, shared -eps_k), both members in group k.

    eps_k is the slice of `shared.table` at offset o_k, drawn from (state.seed,
    state.generation, k) by `seeding.noise_offsets`, so a member is only (offset, sign).
    """
    pairs = popsize // 2
    offsets = shared.table.offsets(state.generation, pairs, shared.centre.shape[0])
    members = tuple(Perturbation(int(o), sign) for o in offsets for sign in (1, -1))
    groups = tuple(k for k in range(pairs) for _ in range(2))
    return Population(state.generation, shared, members, groups)


def pair_offsets(population: Population) -> np.ndarray:
    """The noise offset of each antithetic pair, in pair order (the + member of each): int64 (pairs,)."""
    return np.array([m.offset for m in population.members[0::2]], np.int64)


class Strategy:
    """The shared bookkeeping of an ask/tell strategy; a subclass supplies its maths.

    A subclass sets `name`, `state_class` (its state dataclass, with `centre`, `generation`
    and `seed` fields), `antithetic` (popsize must be even) and `hyperparameters` (the
    constructor keywords `config()` reports, after name, sizes and sigma, in that order),
    calls `Strategy.__init__` first, and defines:

        _init(centre, seed) -> state       # generation 0; centre checked float32 (n,), seed checked
        ask(state) -> Population
        _update(state, population, w) -> state   # w: shaped fitness float64 (popsize,), or the
                                                  # fitness itself when shaping is None; the
                                                  # returned state keeps state.generation

    Attributes: num_params, popsize, sigma0 (the initial sigma; the state holds the current
    one), shaping_name and shaping (the function, or None for a strategy without shaping),
    and for antithetic strategies noise_table_size (floats; `es.noise_table`).
    """

    name: str
    state_class: ClassVar[type]
    antithetic: ClassVar[bool] = False
    hyperparameters: ClassVar[tuple[str, ...]] = ()
    # config() keys whose value lives under another attribute: the initial lr (the state
    # holds the current one) and the shaping's name (`shaping` is the function).
    _CONFIG_ATTRIBUTES: ClassVar[dict[str, str]] = {"lr": "lr0", "shaping": "shaping_name"}

    def __init__(self, num_params: int, popsize: int, sigma: float, *, shaping: str | Shaping | None = None,
                 noise_table_size: int | None = None):
        check_sizes(num_params, popsize, sigma, antithetic=self.antithetic)
        self.num_params, self.popsize = int(num_params), int(popsize)
        self.sigma0 = float(sigma)
        if self.antithetic:  # the mirrored strategies draw their noise from the table
            self.noise_table_size = noise_table.check_size(noise_table_size, self.num_params)
        self.shaping_name: str | None = None
        self.shaping: Shaping | None = None
        if shaping is not None:
            self.shaping_name, self.shaping = get_shaping(shaping)

    # -- the subclass's maths -------------------------------------------------------------
    def _init(self, centre: np.ndarray, seed: int) -> Any:
        raise NotImplementedError

    def ask(self, state: Any) -> Population:
        raise NotImplementedError

    def _update(self, state: Any, population: Population, weights: np.ndarray) -> Any:
        raise NotImplementedError

    # -- shared bookkeeping ---------------------------------------------------------------
    def check_centre(self, centre: np.ndarray) -> np.ndarray:
        """The starting centre as a float32 (n,) copy, or UsageError for a wrong shape or NaN/inf."""
        centre = np.asarray(centre)
        if centre.shape != (self.num_params,):
            raise UsageError(f"initial parameters must have shape ({self.num_params},), got {centre.shape}")
        if not np.all(np.isfinite(centre)):
            raise UsageError("initial parameters contain NaN or inf")
        return centre.astype(np.float32)  # a copy, so the caller's array is never aliased

    def init(self, centre: np.ndarray, seed: int) -> Any:
        """The state at generation 0 from the starting centre and the run seed."""
        return self._init(self.check_centre(centre), seeding.check_seed(seed))

    def tell(self, state: Any, population: Population, fitness: np.ndarray) -> Any:
        """The state for the next generation, from the fitness of `population` (higher is better)."""
        fitness = check_fitness(population, fitness)
        weights = fitness if self.shaping is None else self.shaping(fitness)
        new = self._update(state, population, weights)
        return dataclasses.replace(new, generation=state.generation + 1)

    def centre(self, state: Any) -> np.ndarray:
        return state.centre

    def noise_table(self, state: Any) -> NoiseTable:
        """The run's noise table (antithetic strategies): derived from the run seed, noise_table_size floats."""
        return NoiseTable(state.seed, self.noise_table_size)

    def log_values(self, state: Any) -> dict[str, float]:
        return {"sigma": state.sigma, "lr": state.lr}

    def state_to_npz(self, state: Any) -> tuple[dict[str, np.ndarray], dict]:
        return dataclass_to_npz(state)

    def state_from_npz(self, arrays: dict[str, np.ndarray], meta: dict) -> Any:
        return dataclass_from_npz(self.state_class, arrays, meta)

    def config(self) -> dict:
        """JSON-able settings: name, sizes, sigma, then `hyperparameters` (an optimiser as its config)."""
        cfg = {"name": self.name, "num_params": self.num_params, "popsize": self.popsize, "sigma": self.sigma0}
        for key in self.hyperparameters:
            value = getattr(self, self._CONFIG_ATTRIBUTES.get(key, key))
            cfg[key] = value.config() if hasattr(value, "config") else value
        return cfg
