"""Evolved agents out of a run folder: loading them, and the standard evaluation protocol.

A run folder (see `es.run`) holds everything needed: `config.json` describes the agent and
the task, `best.npz` / `checkpoints/gen-<k>.npz` the parameters. Nothing from training has
to be repeated on the command line.

The standard protocol (the paper's "mean over 100 episodes"; `scripts/evaluate.py RUN_DIR
--episodes 100` runs it and writes eval.json):

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
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

import envs
import es
from es import seeding
from es.errors import first_line
from es.plotting import OutputError, check_output
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
        which: "best", "latest" or a number of completed generations (what was asked for).
        label: human-readable origin, e.g. "best (after generation 12)", "latest (after generation 12)".
        generation: generations completed when these parameters were saved (None if the
            file does not say); for "latest" the checkpoint actually used.
        path: the .npz file the parameters came from.
        skipped: "latest" only: "<file>: <what is wrong>" for each newer checkpoint that did
            not verify and was passed over (newest first); empty when the newest was used.
    """

    run_dir: Path
    config: dict
    params: np.ndarray
    which: str | int
    label: str
    generation: int | None = None
    path: Path | None = None
    skipped: list[str] = field(default_factory=list)

    @cached_property
    def settings(self) -> RunConfig:
        """config.json as a checked RunConfig (the run's settings); hebbian.config.ConfigError
        (an es.UsageError, one line) when a value has the wrong type or is out of range."""
        return presets.from_saved(self.config, f"{self.run_dir}/config.json")

    @property
    def env_id(self) -> str:
        """The env id config.json names."""
        return self.settings.env.env_id

    @property
    def played_env_id(self) -> str:
        """The registered id that runs here: `env_id`, or the installed version an old id
        (e.g. CarRacing-v2) maps to; es.UsageError (one line) when nothing registers it."""
        return _check_env_id(self.env_id, f"{self.run_dir}/config.json")

    @property
    def seed(self) -> int:
        """The run seed: config.json's "es_run" (what es.evolve ran with), else the settings'."""
        return _saved_int(self, "seed", self.settings.evolution.seed)

    @property
    def held_out_episodes(self) -> int:
        """Held-out episodes per evaluation during training (the seeds test seeds avoid)."""
        return _saved_int(self, "eval_episodes", self.settings.evolution.eval_episodes)


def _saved_int(run: LoadedRun, key: str, default: int) -> int:
    es_run = run.config.get("es_run", {})
    if not isinstance(es_run, dict):
        raise es.UsageError(f"{run.run_dir}/config.json: \"es_run\" must be a table, got {type(es_run).__name__}; "
                            "the run folder is damaged")
    value = es_run.get(key, default)
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise es.UsageError(f"{run.run_dir}/config.json: es_run {key} must be a whole number >= 0, got {value!r}; "
                            "the run folder is damaged")
    return int(value)


def _check_saved_ints(run: LoadedRun) -> None:
    """es.UsageError (one line) unless config.json's es_run seed and eval_episodes are whole numbers."""
    _saved_int(run, "seed", run.settings.evolution.seed)
    _saved_int(run, "eval_episodes", run.settings.evolution.eval_episodes)


def parse_which(text: str | int) -> str | int:
    """"best", "latest" or a generation count (the checkpoint after that many generations).

    Raises es.UsageError for anything else.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise es.UsageError(f"checkpoint must be 'best', 'latest' or a generation number, got {text!r}")
        return text
    value = str(text).strip().lower()
    if value in ("best", "latest"):
        return value
    if value.isascii() and value.isdigit():
        return int(value)
    raise es.UsageError(f"checkpoint must be 'best', 'latest' or a generation number, got {text!r}")


def _skip_note(error: es.CheckpointError) -> str:
    """"<file>: <what is wrong>" of a checkpoint load_latest passed over."""
    message, path = str(error), error.path or ""
    reason = message[len(path):].lstrip() if path and message.startswith(path) else message
    reason = reason[3:] if reason.startswith("is ") else reason
    return f"{path or '?'}: {reason.split(';')[0].strip()}"


def _load_file(run_dir: Path, which: str | int) -> tuple[np.ndarray, dict, Path, list[str]]:
    """(parameters, meta, npz path, skipped) of `which`; one-line CheckpointError otherwise.

    The same files as es.load_params, read here so that the generation and what was
    skipped are known (and the label comes from the very file that was loaded).
    """
    ckpt = es.checkpoint
    skipped: list[str] = []
    if which == "best":
        path = run_dir / "best.npz"
        if not path.with_suffix(".json").exists():
            raise es.CheckpointError(f"{run_dir} has no best.npz yet (no held-out evaluation has run); "
                                     "ask for the newest checkpoint instead (--checkpoint latest)", str(path))
        try:
            arrays, meta = ckpt.load_arrays(path)
        except es.CheckpointError as e:  # no fallback to another file: say so, and what to ask for instead
            raise es.CheckpointError(f"{str(e).split(';')[0]}; no other file is used instead: ask for the newest "
                                     "checkpoint (--checkpoint latest) or a generation (--checkpoint N)", e.path) from None
        key = "params"
    elif which == "latest":
        found = ckpt.load_latest(run_dir)
        if found is None:
            raise es.CheckpointError(f"{run_dir} has no checkpoint yet; wait for the first one, or use best",
                                     str(ckpt.checkpoint_dir(run_dir)))
        arrays, meta, path, damaged = found
        skipped = [_skip_note(e) for e in damaged]
        key = "centre"
    else:
        path = ckpt.checkpoint_path(run_dir, int(which))
        if not path.with_suffix(".json").exists():
            kept = [k for k, _ in ckpt.list_checkpoints(run_dir)]
            raise es.CheckpointError(f"{run_dir} has no checkpoint after {which} generations; kept: {kept}", str(path))
        arrays, meta = ckpt.load_arrays(path)
        key = "centre"
    if key not in arrays:
        raise es.CheckpointError(f"{path} holds no {key!r} array (it has {sorted(arrays)}); it was not written by "
                                 "scripts/evolve.py", str(path))
    params = np.asarray(arrays[key])
    if params.ndim != 1 or params.dtype.kind not in "fiu":
        raise es.CheckpointError(f"{path}: {key!r} is {params.dtype} {params.shape}, not a vector of numbers; "
                                 "the file was not written by scripts/evolve.py", str(path))
    params = params.astype(np.float32)
    if not np.all(np.isfinite(params)):
        raise es.CheckpointError(f"{path} holds non-finite parameters; use another checkpoint", str(path))
    return params, (meta if isinstance(meta, dict) else {}), Path(path), skipped


def load_run(run_dir: str | Path, which: str | int = "best") -> LoadedRun:
    """Read config.json and the parameters `which` names.

    One-line es.UsageError / es.CheckpointError (exit status 2) when the folder, the
    generation or the file is missing or damaged, when config.json holds a bad value, or
    when it names an env id that is not installed here. "best" never falls back: a damaged
    best.npz is an error. "latest" is the newest checkpoint that verifies; which one that
    was (`generation`, `path`) and the newer ones passed over (`skipped`) are reported.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise es.UsageError(f"run folder {run_dir} does not exist; give a folder created by scripts/evolve.py")
    if not run_dir.is_dir():
        raise es.UsageError(f"{run_dir} is a file, not a run folder; give a folder created by scripts/evolve.py")
    which = parse_which(which)
    try:
        config = es.read_config(run_dir)
    except OSError as e:
        raise es.UsageError(f"cannot read {run_dir}/config.json: {first_line(e, False)}") from None
    source = f"{run_dir}/config.json"
    try:
        settings = presets.from_saved(config, source)  # a ConfigError (UsageError) if it is not a run's
    except es.UsageError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # a shape from_saved did not foresee
        raise es.UsageError(f"{source} is damaged ({type(e).__name__}: {first_line(e, False)})") from None
    env_id = settings.env.env_id
    if not env_id:
        raise es.UsageError(f"{source} has no env_id; it was not written by scripts/evolve.py")
    _check_env_id(env_id, source)
    try:
        params, meta, path, skipped = _load_file(run_dir, which)
    except OSError as e:  # e.g. a checkpoint that is a folder, a read error
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        raise es.CheckpointError(f"cannot read{where}: {first_line(e, False)}; the run folder is damaged",
                                 getattr(e, "filename", None)) from None
    saved = meta.get("generation")
    saved = int(saved) if isinstance(saved, (int, np.integer)) and not isinstance(saved, bool) else None
    if which == "best":
        generation = saved + 1 if saved is not None else None  # best.json counts generations from 0
        label = "best" + (f" (after generation {generation})" if generation is not None else "")
    elif which == "latest":
        generation = saved if saved is not None else _generation_of(path)  # checkpoints count completed ones
        label = "latest" + (f" (after generation {generation})" if generation is not None else "")
    else:
        generation, label = int(which), f"generation {which}"
    run = LoadedRun(run_dir, config, params, which, label, generation, path, skipped)
    _check_saved_ints(run)  # a bad es_run seed / eval_episodes fails here, before any episode
    return run


def _check_env_id(env_id: str, source: str) -> str:
    """The id `env_id` runs as here; es.UsageError (one line) when nothing here registers it."""
    try:
        return envs.canonical_id(env_id)
    except ValueError as e:  # envs.UnknownEnvironmentError: edited, or from a machine with other packages
        reason = first_line(e, False).split(" List all ids")[0].rstrip(".")
        raise es.UsageError(f"{source} names env {env_id!r}, which is not registered here ({reason}); install the "
                            "package that registers it (config.json \"versions\" lists the run's)") from None


def _generation_of(path: Path) -> int | None:
    """Completed generations from a checkpoint's name (gen-000012.npz -> 12)."""
    digits = Path(path).stem.removeprefix("gen-")
    return int(digits) if digits.isdigit() else None


def skipped_warning(run: LoadedRun) -> str | None:
    """One line naming the newer checkpoints "latest" passed over, or None if none was."""
    if not run.skipped:
        return None
    files = "; ".join(run.skipped)
    return (f"--checkpoint latest: newer checkpoint(s) did not verify and were skipped ({files}); "
            f"using {run.path} ({run.label})")


def load_warnings(run: LoadedRun) -> list[str]:
    """What loading `run` fell back on, one line each: newer checkpoints "latest" skipped,
    an old env id played as the installed version (an evaluation's JSON records both ids)."""
    lines = [skipped_warning(run)]
    if run.played_env_id != run.env_id:
        lines.append(f"{run.run_dir}/config.json names {run.env_id}, which this Gymnasium does not have; "
                     f"playing {run.played_env_id} instead")
    return [line for line in lines if line]


# -- the protocol ------------------------------------------------------------------------
def protocol_env_options(env_id: str) -> dict:
    """Env options that turn a training configuration into the standard protocol's.

    The task's own (`envs.Task.evaluation_options`): CarRacing: no early stop, Gymnasium's
    own environment; quadruped: no stop for lack of progress (the fall check, part of the
    task, stays); other tasks: nothing to change.
    """
    return dict(envs.task_for(env_id).evaluation_options)


def make_problem(run: LoadedRun, morphology: str | None = None, protocol: bool = True,
                 **env_overrides) -> AgentProblem:
    """The fitness problem that plays `run`'s agent, checked against its parameters.

    Args:
        run: from `load_run`.
        morphology: quadruped only: play on this body instead of the training ones.
        protocol: apply `protocol_env_options` (full episodes, reference env).
        env_overrides: further env options (e.g. render_mode is *not* one: rendering
            builds its own env, see `hebbian.frames.render_env`).

    Raises es.UsageError for a morphology the task does not have, es.CheckpointError when
    the parameters do not fit the agent config.json describes.
    """
    cfg = run.settings
    env_id = cfg.env.env_id
    task = envs.task_for(_check_env_id(env_id, f"{run.run_dir}/config.json"))  # one line if unknown here
    options = {**(protocol_env_options(env_id) if protocol else {}), **env_overrides}
    morphologies = True
    if morphology is not None:
        if not task.morphologies:
            raise es.UsageError(f"--morphology applies to the quadruped only; {env_id} has no morphologies")
        if morphology not in envs.MORPHOLOGIES:
            raise es.UsageError(f"unknown morphology {morphology!r}; choose one of {', '.join(envs.MORPHOLOGIES)}")
        morphologies = None  # one body, given as an env option
        options["morphology"] = morphology
    try:
        problem = presets.problem_from_config(cfg, morphologies=morphologies, **options)
    except es.UsageError:
        raise
    except ValueError as e:  # unknown env id, option or agent setting
        raise es.UsageError(first_line(e, False)) from None
    except ImportError as e:  # the env's package (pybullet, box2d, ...) is missing here
        raise es.UsageError(f"{env_id} needs the Python package {e.name or first_line(e, False)!r}, which is not "
                            "installed here; install it (config.json \"versions\" lists the run's)") from None
    if problem.num_params != run.params.shape[0]:
        raise es.CheckpointError(f"the {run.label} parameters of {run.run_dir} have {run.params.shape[0]} values, "
                                 f"but the agent config.json describes needs {problem.num_params}; "
                                 "the folder mixes runs")
    return problem


def run_test_seeds(run: LoadedRun, episodes: int) -> list[int]:
    """`test_seeds` of `run`, excluding the held-out seeds its training evaluated on."""
    held_out = run.held_out_episodes
    exclude = seeding.held_out_seeds(run.seed, held_out) if held_out else []
    return seeding.test_seeds(run.seed, episodes, exclude)


@dataclass
class EvaluationReport:
    """Result of `evaluate`; `to_dict` is what eval.json holds: "checkpoint" is what was asked
    for ("best", "latest", N), "generation" the generations completed when the parameters
    used were saved, "checkpoint_file" their file, "skipped" the newer checkpoints that did
    not verify (for "latest").

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
            "generation": self.run.generation,
            "checkpoint_file": None if self.run.path is None else str(self.run.path),
            "skipped": list(self.run.skipped),
            "label": self.run.label,
            "env_id": self.run.env_id,
            "played_env_id": self.run.played_env_id,
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

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    def write(self, path: str | Path) -> Path:
        """Write `to_dict` as JSON atomically (a crash never leaves half a file).

        Raises ReportWriteError (an es.ESError, one line) when the file cannot be written;
        it carries the JSON (`.text`) so that the result is not lost: print or save it.
        """
        path = Path(path)
        text = self.to_json()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            es.checkpoint.atomic_write_bytes(path, text.encode())
        except OSError as e:
            raise ReportWriteError(f"cannot write the evaluation to {path}: {first_line(e, False)}", text, path) from None
        return path


RUN_FILES = ("config.json", "progress.csv", "best.npz", "best.json")


def report_path(run: LoadedRun, path: str | Path | None = None) -> Path:
    """Where the evaluation of `run` goes: `path`, or RUN_DIR/eval.json when None.

    Checked before any episode (es.UsageError, one line): it must not be one of the run's
    own files, and it must be writable (`es.plotting.check_output`).
    """
    target = Path(path) if path is not None else run.run_dir / "eval.json"
    resolved, root = target.resolve(), run.run_dir.resolve()
    if resolved in [root / f for f in RUN_FILES] or resolved.parent == root / "checkpoints":
        raise es.UsageError(f"--eval-json {target} would overwrite a file of the run; choose another file")
    check_output(target, "evaluation", "choose another file" if path is not None else
                 "write it elsewhere with --eval-json FILE")
    return target


class ReportWriteError(OutputError):
    """eval.json could not be written after the evaluation ran; `text` is the JSON it would hold."""

    def __init__(self, message: str, text: str, path: Path):
        super().__init__(message)
        self.text, self.path = text, path


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
    if not isinstance(episodes, (int, np.integer)) or isinstance(episodes, bool) or episodes < 1:
        raise es.UsageError(f"episodes must be a positive whole number, got {episodes!r}")
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
