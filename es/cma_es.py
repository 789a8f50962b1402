"""CMA-ES through pycma: full covariance ("cma") or diagonal, sep-CMA ("sep-cma").

Use it for problems up to about ten thousand parameters. Members are full vectors
(`Explicit`), so every individual's parameters cross the wire (4 bytes x n each); full
CMA also keeps two n x n float64 matrices (1.6 GB at n = 10,000), so prefer "sep-cma"
(O(n) memory and time, Ros & Hansen 2008) above a few thousand. OpenAI-ES and PGPE are the
strategies for the 456,640-coefficient Hebbian networks.

pycma minimises and ranks the fitness itself, so there is no shaping: `tell` hands it
-fitness. The live CMA state (mean, step size, covariance, evolution paths, pycma's random
generator) stays inside pycma's object, because pycma offers no way to save it except
pickling the whole object, and a pickle is not plain data: it breaks with pycma's version
and runs code when loaded. So `CMAState` holds only the plain data that determines that
object, the starting point plus the full fitness history (generations x popsize float64),
and the object is a cache: pycma is seeded from the run seed and, after a resume, the
ask/tell sequence is replayed with the recorded fitness, which rebuilds the optimiser bit
for bit (replay costs what the original driver-side updates cost, no evaluations).
pycma draws from numpy's *global* generator; every pycma call runs with that generator
swapped for a private one, so nothing else in the process (or a resumed run) perturbs it.
"""
from __future__ import annotations

import dataclasses
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from . import seeding
from .errors import UsageError
from .resources import physical_memory
from .population import Explicit, Population
from .strategy import Strategy

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
    total = physical_memory()
    need = 2 * 8 * n * n
    if total is not None and need > total // 2:
        raise UsageError(f"full CMA-ES with {n} parameters needs {need / 2**30:.0f} GiB for its covariance and this "
                         f"machine has {total / 2**30:.0f} GiB; use sep-cma (diagonal), openai-es or pgpe")


class CMAES(Strategy):
    """pycma's CMA-ES behind the ask/tell interface; `diagonal=True` gives sep-CMA-ES.

    Why the state lives in pycma's object: pycma's state cannot be saved without pickle,
    so `CMAState` is x0 plus the fitness history and `_engine` is pycma's object rebuilt
    from them (replayed on resume); see the module docstring.

    Args:
        options: extra pycma options (e.g. {"CMA_active": False}); popsize, seed and
            verbosity are set here.
    """

    state_class = CMAState
    hyperparameters = ("options",)

    def __init__(self, num_params: int, popsize: int, sigma: float = 0.1, *, diagonal: bool = False, options: dict | None = None):
        super().__init__(num_params, popsize, sigma)  # no shaping: pycma ranks the fitness itself
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
        self.diagonal = bool(diagonal)
        self.options = dict(options or {})
        self._engine = None  # (pycma object, the generation and fitness history it has seen)
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
        import cma  # imported here, not for a cycle: `import cma` costs ~2 s at every script start

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
    def _init(self, centre: np.ndarray, seed: int) -> CMAState:
        history = np.zeros((0, self.popsize), np.float64)
        return CMAState(centre, history, centre.copy(), self.sigma0, 0, seed)

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

    def _update(self, state: CMAState, population: Population, fitness: np.ndarray) -> CMAState:
        es = self._engine_for(state)
        if self._asked is None or self._asked[0] != state.generation:
            raise UsageError(f"tell for generation {state.generation} without a matching ask")
        with self._private_rng():
            es.tell(self._asked[1], list(-fitness))  # pycma's own float64 samples, not the float32 copies
        self._asked = None
        history = np.concatenate([state.fitness_history, fitness[None, :]])
        self._engine = (es, state.generation + 1, history)  # positioned at the state `tell` returns
        return dataclasses.replace(state, fitness_history=history, centre=np.asarray(es.mean, np.float32), sigma=float(es.sigma))

    def log_values(self, state: CMAState) -> dict[str, float]:
        return {"sigma": state.sigma, "lr": float("nan")}


class SepCMAES(CMAES):
    """sep-CMA-ES (Ros & Hansen 2008): `CMAES` with a diagonal covariance, O(n) memory and time."""

    def __init__(self, num_params: int, popsize: int, sigma: float = 0.1, *, options: dict | None = None):
        super().__init__(num_params, popsize, sigma, diagonal=True, options=options)
