"""Evolution strategies for any picklable fitness problem (see `es.problem.Problem`).

`es` imports neither `hebbian` nor `envs`. The pieces:

    make_strategy(name, num_params, popsize, sigma, lr=None, **kw)
        "openai-es" (OpenAIES), "pgpe" (PGPE + ClipUp), "cma" / "sep-cma" (CMAES / SepCMAES, pycma);
        es.STRATEGIES maps these names to the classes (all built on es.Strategy)
    SerialEvaluator(problem) / RayEvaluator(problem, num_workers=None, address=None)
    evolve(problem, strategy, evaluator, run_dir, generations=..., episodes=..., seed=...,
           eval_every=..., eval_episodes=..., config=..., resume=..., progress=...)
    make_run_dir(env_id, seed, root="runs"), read_config(run_dir), load_params(run_dir, which)
    UsageError (exit status 2), CheckpointError and ResourceError (no room for the noise table;
    both UsageErrors), EvaluationError, StorageError (a full or read-only run folder), ESError
    (their base: exit status 1)
    NoiseTable: the run's table of standard normals that OpenAI-ES and PGPE members are
    offsets into (es.noise_table: its size, memory per node, kernels)

A command-line script wires them like this (exit status 2 for usage errors)::

    import es
    try:
        if args.resume:                                  # continue bit for bit
            run_dir = Path(args.resume)
            cfg = es.read_config(run_dir)                # your keys + "es_run" + "versions"
        else:
            cfg = resolve(args)                          # your JSON-able settings
            run_dir = es.make_run_dir(cfg["env_id"], cfg["seed"], root="runs")
        problem = HebbianProblem(**cfg["problem"])       # any picklable es.Problem
        strategy = es.make_strategy(cfg["strategy"], problem.num_params, cfg["popsize"],
                                    cfg["sigma"], cfg["lr"], **cfg["strategy_kwargs"])
        evaluator = (es.SerialEvaluator(problem) if cfg["workers"] == 0 else
                     es.RayEvaluator(problem, num_workers=cfg["workers"] or None, address=args.ray_address))
        with evaluator:
            result = es.evolve(problem, strategy, evaluator, run_dir, generations=cfg["generations"],
                               episodes=cfg["episodes"], seed=cfg["seed"], eval_every=cfg["eval_every"],
                               eval_episodes=cfg["eval_episodes"], config=cfg, resume=bool(args.resume),
                               progress="quiet" if args.quiet else "auto")
    except es.UsageError as e:
        parser.exit(2, f"error: {e}\n")
    except es.ESError as e:
        parser.exit(1, f"error: {e}\n")

Later, `es.load_params(run_dir, "best")` gives the float32 parameters to watch.
"""

import numba_cache

numba_cache.track(__path__[0])  # before any module here compiles a Numba function

from .checkpoint import load_arrays, save_arrays
from .cma_es import CMAES, CMAState, SepCMAES
from .errors import CheckpointError, ESError, EvaluationError, ResourceError, StorageError, UsageError
from .evaluation import Evaluation, Evaluator, RayEvaluator, SerialEvaluator
from .noise_table import NoiseTable
from .openai_es import OpenAIES, OpenAIESState, estimate_gradient
from .optim import SGD, Adam, ClipUp, make_optimizer
from .pgpe import PGPE, PGPEState
from .population import CENTRE, Explicit, Perturbation, Population, SearchPoint, materialize
from .problem import Problem
from .run import COLUMNS, RunResult, evolve, load_params, make_run_dir, package_versions, read_config
from .shaping import SHAPINGS, centered_ranks, raw, z_score
from .strategies import STRATEGIES, STRATEGY_NAMES, make_strategy
from .strategy import Strategy

__all__ = [
    "Adam", "CENTRE", "CMAES", "CMAState", "COLUMNS", "CheckpointError", "ClipUp", "ESError", "Evaluation",
    "EvaluationError", "Evaluator", "Explicit", "NoiseTable", "OpenAIES", "OpenAIESState", "PGPE", "PGPEState", "Perturbation",
    "Population", "Problem", "RayEvaluator", "ResourceError", "RunResult", "SGD", "SHAPINGS", "STRATEGIES", "STRATEGY_NAMES", "SearchPoint", "SepCMAES", "SerialEvaluator", "StorageError",
    "Strategy", "UsageError", "centered_ranks", "estimate_gradient", "evolve", "load_arrays", "load_params",
    "make_optimizer", "make_run_dir", "make_strategy", "materialize", "package_versions", "raw", "read_config",
    "save_arrays", "z_score",
]
