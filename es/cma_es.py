"""CMA-ES through pycma: full covariance ("cma") or diagonal, sep-CMA ("sep-cma").

Use it for problems up to about ten thousand parameters. Members are full vectors
(`Explicit`), so every individual's parameters cross the wire (4 bytes x n each); full
CMA also keeps two n x n float64 matrices (1.6 GB at n = 10,000), so prefer "sep-cma"
(O(n) memory and time, Ros & Hansen 2008) above a few thousand. OpenAI-ES and PGPE are the
strategies for the 456,640-coefficient Hebbian networks.

pycma minimises; `tell` hands it -fitness. pycma's internal state cannot be saved without
pickle, so the plain-data state is the starting point plus the full fitness history
(generations x popsize float64): pycma is seeded from the run seed and, after a resume, the
ask/tell sequence is replayed with the recorded fitness, which rebuilds the optimiser bit
for bit (replay costs what the original driver-side updates cost, no evaluations).
pycma draws from numpy's *global* generator; every pycma call runs with that generator
swapped for a private one, so nothing else in the process (or a resumed run) perturbs it.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from . import seeding
from .errors import UsageError
from .openai_es import _check_centre
from .population import Explicit, Population
from .strategy import check_fitness, check_sizes

MAX_RECOMMENDED_PARAMS = 10_000


@dataclass
class CMAState:
    """x0: starting centre float32 (n,); fitness_history: float64 (generation, popsize);
    centre: current mean float32 (n,); sigma: current step size; generation: next generation;
    seed: the run seed."""

    x0: np.ndarray
    fitness_history: np.ndarray
    centre: np.ndarray
    sigma: float
    generation: int
    seed: int


def _check_covariance_fits(n: int) -> None:
    """UsageError when full CMA-ES's two n x n float64 matrices would take over half the memory.

    pycma allocates them on the first ask; at 44,160 parameters that is 31 GB, and the OS
    kills the process without a word.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not available on this platform
        return
    need = 2 * 8 * n * n
    if need > total // 2:
        raise UsageError(f"full CMA-ES with {n} parameters needs {need / 2**30:.0f} GiB for its covariance and this "
                         f"machine has {total / 2**30:.0f} GiB; use sep-cma (diagonal), openai-es or pgpe")


class CMAES:
    """pycma's CMA-ES behind the ask/tell interface; `diagonal=True` gives sep-CMA-ES.

    Args:
        options: extra pycma options (e.g. {"CMA_active": False}); popsize, seed and
            verbosity are set here.
    """

    def __init__(self, num_params: int, popsize: int, sigma: float = 0.1, *, diagonal: bool = False, options: dict | None = None):
        check_sizes(num_params, popsize, sigma, antithetic=False)
        if popsize < 2:
            raise UsageError(f"CMA-ES needs popsize >= 2, got {popsize}")
        if not diagonal:
            _check_covariance_fits(num_params)
        if num_params > MAX_RECOMMENDED_PARAMS:
            warnings.warn(
                f"CMA-ES with {num_params} parameters: it is meant for up to ~{MAX_RECOMMENDED_PARAMS}; "
                "every member ships a full vector (use openai-es or pgpe for large networks)",
                stacklevel=2,
            )
        self.name = "sep-cma" if diagonal else "cma"
        self.num_params, self.popsize = int(num_params), int(popsize)
        self.sigma0, self.diagonal = float(sigma), bool(diagonal)
        self.options = dict(options or {})
        self._engine = None  # (pycma object, rng state, generation, history it has seen)
        self._asked: tuple[int, list[np.ndarray]] | None = None

    # -- pycma plumbing -------------------------------------------------------------------
    @contextmanager
    def _private_rng(self):
        """Run pycma with numpy's global RandomState swapped for this run's own."""
        outer = np.random.get_state()
        np.random.set_state(self._rng_state)
        try:
            yield
        finally:
            self._rng_state = np.random.get_state()
            np.random.set_state(outer)

    def _new_engine(self, state: CMAState):
        import cma

        opts = {
            "popsize": self.popsize, "seed": seeding.strategy_seed(state.seed), "CMA_diagonal": self.diagonal,
            "verbose": -9, "verb_log": 0, "verb_disp": 0, "verb_filenameprefix": "",
        }
        opts.update(self.options)
        self._rng_state = np.random.RandomState(0).get_state()  # replaced by pycma's own seeding
        with self._private_rng():
            return cma.CMAEvolutionStrategy(np.asarray(state.x0, np.float64), self.sigma0, opts)

    def _engine_for(self, state: CMAState):
        """The pycma object positioned at `state`, replaying the history if needed."""
        if self._engine is not None:
            es, gen, history = self._engine
            if gen == state.generation and np.array_equal(history, state.fitness_history):
                return es
        es = self._new_engine(state)
        for fitness in state.fitness_history:  # replay: same seed + same fitness = same pycma state
            with self._private_rng():
                xs = es.ask()
                es.tell(xs, list(-fitness))
        self._engine = (es, state.generation, state.fitness_history)
        return es

    # -- ask / tell -----------------------------------------------------------------------
    def init(self, centre: np.ndarray, seed: int) -> CMAState:
        centre = _check_centre(centre, self.num_params)
        history = np.zeros((0, self.popsize), np.float64)
        return CMAState(centre, history, centre.copy(), self.sigma0, 0, seeding.check_seed(seed))

    def ask(self, state: CMAState) -> Population:
        es = self._engine_for(state)
        if self._asked is not None and self._asked[0] == state.generation:
            xs = self._asked[1]  # asking twice returns the same population
        else:
            with self._private_rng():
                xs = es.ask()
            self._asked = (state.generation, xs)
        members = tuple(Explicit(np.asarray(x, np.float32)) for x in xs)
        return Population(state.generation, None, members, tuple(range(self.popsize)))

    def tell(self, state: CMAState, population: Population, fitness: np.ndarray) -> CMAState:
        fitness = check_fitness(population, fitness)
        es = self._engine_for(state)
        if self._asked is None or self._asked[0] != state.generation:
            raise UsageError(f"tell for generation {state.generation} without a matching ask")
        with self._private_rng():
            es.tell(self._asked[1], list(-fitness))  # pycma's own float64 samples, not the float32 copies
        self._asked = None
        history = np.concatenate([state.fitness_history, fitness[None, :]])
        new = CMAState(state.x0, history, np.asarray(es.mean, np.float32), float(es.sigma), state.generation + 1, state.seed)
        self._engine = (es, new.generation, history)
        return new

    def centre(self, state: CMAState) -> np.ndarray:
        return state.centre

    def log_values(self, state: CMAState) -> dict[str, float]:
        return {"sigma": state.sigma, "lr": float("nan")}

    def state_to_npz(self, state: CMAState):
        arrays = {"x0": state.x0, "fitness_history": state.fitness_history, "centre": state.centre}
        return arrays, {"sigma": state.sigma, "generation": state.generation, "seed": state.seed}

    def state_from_npz(self, arrays, meta) -> CMAState:
        try:
            return CMAState(
                np.array(arrays["x0"]), np.array(arrays["fitness_history"]), np.array(arrays["centre"]),
                float(meta["sigma"]), int(meta["generation"]), int(meta["seed"]),
            )
        except KeyError as e:
            raise UsageError(f"checkpoint lacks {e} of the CMA-ES state; was it written by another strategy?") from None

    def config(self) -> dict:
        return {"name": self.name, "num_params": self.num_params, "popsize": self.popsize,
                "sigma": self.sigma0, "options": self.options}
