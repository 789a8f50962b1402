"""Evolved agents out of a run folder: loading them, and the standard evaluation protocol.

A run folder (see `es.run`) holds everything needed: `config.json` describes the agent and
the task, `best.npz` / `checkpoints/gen-<k>.npz` the parameters. Nothing from training has
to be repeated on the command line.

The standard protocol (the paper's "mean over 100 episodes"):

* full episodes: the training-only shortcuts are off (CarRacing's stop after 20 negative
  rewards, the quadruped's stop after 30 steps without progress); an episode ends only when
  the task itself ends it (time limit, a fall, leaving the track);
* CarRacing runs on Gymnasium's own environment (`exact_env=True`), not the fast copy
  used for training, so a score is a score of the reference task;
* held-out *test* seeds: neither training seeds nor the held-out seeds the run used to
  pick `best.npz` (selecting on those would make them a validation set, not a test set);
* every episode's return is kept, and the summary is mean, std (population, ddof=0),
  min and max.

Test seeds live in their own namespace of the run seed (`es.seeding.TEST`), so they are
reproducible from the run folder alone and the same for every checkpoint of a run:
checkpoints compare on equal terms.
"""
from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import envs
import es
from es import seeding
from hebbian import presets
from hebbian.agent import AgentProblem
from hebbian.config import RunConfig

PROTOCOL = ("full episodes (training early stops off), held-out test seeds distinct from training "
            "and from the run's held-out evaluation seeds, reference environment")


# -- loading -------------------------------------------------------------------------------
@dataclass
class LoadedRun:
    """An evolved agent read from a run folder.

    Attributes:
        run_dir: the run folder.
        config: config.json as a dict (the run configuration plus "es_run" and "versions").
        params: float32 (num_params,) parameter vector.
        which: "best", "latest" or a number of completed generations.
        label: human-readable origin, e.g. "best (after generation 12)".
    """

    run_dir: Path
    config: dict
    params: np.ndarray
    which: str | int
    label: str

    @property
    def settings(self) -> RunConfig:
        """config.json as a checked RunConfig (the run's settings)."""
        return presets.from_saved(self.config, f"{self.run_dir}/config.json")

    @property
    def env_id(self) -> str:
        return self.settings.env.env_id

    @property
    def seed(self) -> int:
        return int(self.config.get("es_run", {}).get("seed", self.config.get("seed", 0)))


def parse_which(text: str | int) -> str | int:
    """"best", "latest" or a generation count (the checkpoint after that many generations).

    Raises es.UsageError for anything else.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("best", "latest"):
        return value
    if value.isdigit():
        return int(value)
    raise es.UsageError(f"checkpoint must be 'best', 'latest' or a generation number, got {text!r}")


def load_run(run_dir: str | Path, which: str | int = "best") -> LoadedRun:
    """Read config.json and the parameters `which` names; one-line es.UsageError /
    es.CheckpointError when the folder, the generation or the file is missing or damaged."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise es.UsageError(f"run folder {run_dir} does not exist; give a folder created by scripts/evolve.py")
    which = parse_which(which)
    config = es.read_config(run_dir)
    settings = presets.from_saved(config, f"{run_dir}/config.json")  # a ConfigError (UsageError) if it is not a run's
    if not settings.env.env_id:
        raise es.UsageError(f"{run_dir}/config.json has no env_id; it was not written by scripts/evolve.py")
    if which == "best" and not (run_dir / "best.json").exists():
        raise es.CheckpointError(f"{run_dir} has no best.npz yet (no held-out evaluation has run); "
                                 "ask for the newest checkpoint instead (--checkpoint latest)", str(run_dir / "best.npz"))
    params = es.load_params(run_dir, which)
    if which == "best":
        gen = _best_generation(run_dir)
        label = "best" + (f" (after generation {gen + 1})" if gen is not None else "")
    elif which == "latest":
        label = "latest"
    else:
        label = f"generation {which}"
    return LoadedRun(run_dir, config, params, which, label)


def _best_generation(run_dir: Path) -> int | None:
    """0-based generation after which best.npz was evaluated (from its sidecar), if known.

    Only a label: load_params has already verified the file, so a surprise here is ignored.
    """
    try:
        gen = json.loads((run_dir / "best.json").read_text())["meta"]["generation"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return int(gen) if isinstance(gen, int) else None


# -- the protocol ------------------------------------------------------------------------
def protocol_env_options(env_id: str) -> dict:
    """Env options that turn a training configuration into the standard protocol's.

    CarRacing: no early stop, Gymnasium's own environment; quadruped: no stop for lack of
    progress (the fall check, part of the task, stays); other tasks: nothing to change.
    """
    family = envs.task_family(env_id)
    if family == "car_racing":
        # Reported scores come from Gymnasium's own CarRacing, the reference environment.
        return {"neg_reward_limit": None, "exact_env": True}
    if family == "quadruped":
        return {"no_progress_patience": None}
    return {}


def make_problem(run: LoadedRun, morphology: str | None = None, protocol: bool = True,
                 **env_overrides) -> AgentProblem:
    """The fitness problem that plays `run`'s agent, checked against its parameters.

    Args:
        run: from `load_run`.
        morphology: quadruped only: play on this body instead of the training ones.
        protocol: apply `protocol_env_options` (full episodes, reference env).
        env_overrides: further env options (e.g. render_mode is *not* one: rendering
            builds its own env, see `hebbian.watch`).

    Raises es.UsageError for a morphology the task does not have, es.CheckpointError when
    the parameters do not fit the agent config.json describes.
    """
    cfg = run.settings
    env_id = cfg.env.env_id
    options = {**(protocol_env_options(env_id) if protocol else {}), **env_overrides}
    morphologies = True
    if morphology is not None:
        if envs.task_family(env_id) != "quadruped":
            raise es.UsageError(f"--morphology applies to the quadruped only; {env_id} has no morphologies")
        if morphology not in envs.MORPHOLOGIES:
            raise es.UsageError(f"unknown morphology {morphology!r}; choose one of {', '.join(envs.MORPHOLOGIES)}")
        morphologies = None  # one body, given as an env option
        options["morphology"] = morphology
    try:
        problem = presets.problem_from_config(cfg, morphologies=morphologies, **options)
    except ValueError as e:  # unknown env id, option or agent setting
        raise es.UsageError(str(e).splitlines()[0]) from None
    if problem.num_params != run.params.shape[0]:
        raise es.CheckpointError(f"the {run.label} parameters of {run.run_dir} have {run.params.shape[0]} values, "
                                 f"but the agent config.json describes needs {problem.num_params}; "
                                 "the folder mixes runs")
    return problem


def run_test_seeds(run: LoadedRun, episodes: int) -> list[int]:
    """`test_seeds` of `run`, excluding the held-out seeds its training evaluated on."""
    held_out = int(run.config.get("es_run", {}).get("eval_episodes", run.config.get("eval_episodes", 0)) or 0)
    exclude = seeding.held_out_seeds(run.seed, held_out) if held_out else []
    return seeding.test_seeds(run.seed, episodes, exclude)


@dataclass
class EvaluationReport:
    """Result of `evaluate`; `to_dict` is what eval.json holds.

    returns: float64 (E,) one return per episode; with several training morphologies and
    no --morphology, E = seeds x morphologies in (seed, morphology) order.
    steps: int64 (S,) environment steps per seed (summed over morphologies).
    """

    run: LoadedRun
    seeds: list[int]
    morphologies: list[str] | None
    returns: np.ndarray
    steps: np.ndarray
    env_options: dict
    backend: str
    workers: int
    wall_s: float

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        return float(self.returns.std())

    def summary(self) -> str:
        """One line: `mean +/- std` first, then the details."""
        return (f"{self.mean:.2f} +/- {self.std:.2f}  ({len(self.returns)} episodes, min {self.returns.min():.2f}, "
                f"max {self.returns.max():.2f}; {self.run.env_id}, {self.run.label})")

    def to_dict(self) -> dict:
        return {
            "run_dir": str(self.run.run_dir),
            "checkpoint": self.run.which,
            "label": self.run.label,
            "env_id": self.run.env_id,
            "env_options": self.env_options,
            "morphologies": self.morphologies,
            "protocol": PROTOCOL,
            "episodes": len(self.returns),
            "mean": self.mean,
            "std": self.std,
            "min": float(self.returns.min()),
            "max": float(self.returns.max()),
            "returns": [float(r) for r in self.returns],
            "seeds": self.seeds,
            "steps": [int(s) for s in self.steps],
            "backend": self.backend,
            "workers": self.workers,
            "wall_s": round(self.wall_s, 3),
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def write(self, path: str | Path) -> Path:
        """Write `to_dict` as JSON atomically (a crash never leaves half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        es.checkpoint.atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=1) + "\n").encode())
        return path


def evaluate(run: LoadedRun, episodes: int = 100, *, morphology: str | None = None, backend: str = "ray",
             workers: int | None = None, address: str | None = None) -> EvaluationReport:
    """Evaluate `run`'s agent by the standard protocol (see the module docstring).

    Args:
        run: from `load_run`.
        episodes: number of test seeds (100 = the paper's protocol).
        morphology: quadruped only: evaluate on this body.
        backend: "ray" (episodes spread over Ray workers, one per CPU, or over the cluster
            at `address` / RAY_ADDRESS) or "serial" (this process).
        workers: Ray workers (None = one per CPU).
        address: Ray cluster to join (None = local in-process Ray unless RAY_ADDRESS is set).

    Every episode is one evaluator member (the centre, one seed), so results come back in
    seed order whatever the number of workers.
    """
    if backend not in ("ray", "serial"):
        raise es.UsageError(f"backend must be 'ray' or 'serial', got {backend!r}")
    problem = make_problem(run, morphology)
    seeds = run_test_seeds(run, episodes)
    t0 = time.perf_counter()
    if backend == "serial":
        evaluator = es.SerialEvaluator(problem)
    else:
        evaluator = es.RayEvaluator(problem, num_workers=workers, address=address, include_dashboard=False)
    with evaluator:
        ev = evaluator.evaluate(es.SearchPoint(run.params, np.float32(0)), [es.CENTRE] * len(seeds),
                                [[s] for s in seeds])
        n_workers = int(evaluator.num_workers)
    returns = np.array([r for member in ev.returns for r in member], np.float64)
    if not np.all(np.isfinite(returns)):
        raise es.EvaluationError(f"the evaluation of {run.run_dir} returned non-finite returns")
    return EvaluationReport(run, seeds, problem.morphologies, returns, np.asarray(ev.steps, np.int64),
                            problem.env_options, backend, n_workers, time.perf_counter() - t0)
