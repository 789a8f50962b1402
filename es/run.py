"""The run loop and its folder: `evolve`, `make_run_dir`, `read_config`, `load_params`.

One generation of `evolve` is

    ask -> evaluate (env seeds from `seeding`) -> tell -> [held-out evaluation of the new
    centre] -> append a row to progress.csv -> checkpoint -> progress display

Run folder (`make_run_dir` gives runs/<env-id>/<UTC time>-<seed>/):

    config.json     the caller's config dict, plus "es_run" (this loop's settings, the
                    strategy's and evaluator's settings, the problem class) and "versions"
                    (Python and package versions); written once, at the start.
    progress.csv    one row per generation (0-based `generation`); columns COLUMNS:
                    wall_s = training wall-clock seconds, summed over resumes;
                    env_steps = cumulative training env steps (held-out episodes excluded);
                    fitness_* = raw population fitness; sigma, lr = the strategy's values
                    after the update; eval_mean / eval_std = mean / std of the per-episode
                    returns of the updated centre on the held-out seeds (empty when not
                    evaluated); bytes_sent = bytes shipped to workers in that generation.
    checkpoints/    gen-<completed>.npz/.json after every generation, the newest
                    `keep_checkpoints` kept (see `es.checkpoint`); array "centre" always
                    present, strategy state under "state.*".
    best.npz/.json  the centre with the highest held-out eval_mean so far (not the best
                    individual: a single lucky episode does not make a good policy).

The held-out evaluation runs every `eval_every` generations (after generation g with
(g+1) % eval_every == 0) and after the last one; eval_every=0 means only at the end. The
held-out seeds are the same fixed list for the whole run (see `es.seeding`).

Resume: `evolve(..., resume=True)` on an existing run folder loads the newest checkpoint
that verifies (a damaged newer one is reported and skipped, never deleted), drops
progress rows written after it, and continues; since every draw derives from the run
seed, the resumed run ends with the same parameters and rows (all columns but wall_s, and
bytes_sent when the evaluator changed) as an uninterrupted one, also with a different
number of workers. The caller must rebuild the same problem and strategy, e.g. from
config.json; the seed, episodes, evaluation settings and the strategy's settings are
checked against it (one line naming the first difference). Raising `generations` on resume
continues a finished run; the rows then match a run started with the larger number except
for the held-out evaluation the shorter run did after its last generation.

One writer per folder: from start to end `evolve` holds an exclusive lock (flock) on
RUN_DIR/.lock, so a second evolve on the same folder fails at once ("RUN_DIR is in use by
another run (pid N)"). The kernel drops the lock when the process ends, even by SIGKILL, so
the .lock file that stays behind blocks nothing. Under the lock, temp files `.NAME.tmp-PID`
left by a killed writer are removed from RUN_DIR and RUN_DIR/checkpoints.

Refusals (one line each, nothing written): a fresh run into a file, into a folder that is
not empty (a lone .lock aside), that holds a run (config.json) or the remains of one
without config.json (checkpoints/, progress.csv, best.npz). A resume when progress.csv is
missing or lacks rows the checkpoint counts (the history would be lost), when checkpoint
files exist but none verifies (no silent restart from generation 0), or when the newest
verified checkpoint records another seed, strategy or num_params (another run's file). A
checkpoint that verifies but holds the wrong content (centre of the wrong size, NaN, a bad
generation count) is skipped like a damaged one. A failed write (disk full, read-only)
stops the run with one line, UsageError before the first generation and StorageError
after, and leaves every saved file as it was: free space and resume.
"""
from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import errno
import fcntl
import io
import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint as ckpt
from . import seeding
from .errors import CheckpointError, ESError, EvaluationError, StorageError, UsageError
from .population import CENTRE, SearchPoint
from .progress import ProgressReporter, resolve_mode

COLUMNS = ("generation", "wall_s", "env_steps", "fitness_mean", "fitness_max", "fitness_min", "fitness_std",
           "sigma", "lr", "eval_mean", "eval_std", "bytes_sent")
RESERVED_CONFIG_KEYS = ("es_run", "versions")
LOCK_NAME = ".lock"
_REMAINS = ("checkpoints", "progress.csv", "best.npz", "best.json")  # what a run leaves besides config.json
_VERSIONED = ("numpy", "scipy", "numba", "ray", "cma", "rich", "torch", "gymnasium", "pybullet", "hebbian-meta")


@dataclass
class RunResult:
    """What `evolve` returns. centre: float32 (n,) final centre; generations: completed;
    env_steps: training env steps; best_*: the best held-out evaluation (None if none ran);
    final_eval_*: held-out evaluation after the last generation."""

    run_dir: Path
    centre: np.ndarray
    generations: int
    env_steps: int
    best_eval_mean: float | None
    best_generation: int | None
    final_eval_mean: float | None
    final_eval_std: float | None


def make_run_dir(env_id: str, seed: int, root: str | Path = "runs", now: _dt.datetime | None = None) -> Path:
    """Create and return `root/<env-id>/<UTC time>-<seed>/` (e.g. runs/CarRacing-v3/20260128T064200Z-7).

    Characters of env_id outside [A-Za-z0-9._-] become "_" (so "ALE/Pong-v5" stays one folder);
    if the folder exists (two runs in one second), "-1", "-2", ... is appended.
    """
    seed = seeding.check_seed(seed)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    stamp = now.astimezone(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    parent = Path(root) / re.sub(r"[^A-Za-z0-9._-]", "_", env_id)
    parent.mkdir(parents=True, exist_ok=True)
    for k in range(1000):
        path = parent / (f"{stamp}-{seed}" + (f"-{k}" if k else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise UsageError(f"cannot create a fresh run folder under {parent}")


def package_versions() -> dict[str, str | None]:
    """Python, platform and installed versions of the packages a run depends on (None = absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def read_config(run_dir: str | Path) -> dict:
    """The run's config.json as a dict; UsageError if `run_dir` is not a run folder."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        remains = _remains(Path(run_dir))
        if remains:
            raise UsageError(f"{run_dir} holds the remains of a run without config.json ({', '.join(remains)}); "
                             "restore its config.json to use it, or move the folder away")
        raise UsageError(f"{run_dir} is not a run folder (no config.json); give a folder created by evolve")
    try:
        config = json.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(f"{path} is not valid JSON ({e}); the run folder is damaged") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path} is not a JSON object; the run folder is damaged")
    return config


def _remains(run_dir: Path) -> list[str]:
    return [name for name in _REMAINS if (run_dir / name).exists()]


def _identity(es_run: Any) -> dict:
    """What each checkpoint's meta records about its run (seed, strategy name, num_params)."""
    es_run = es_run if isinstance(es_run, dict) else {}
    strategy, problem = es_run.get("strategy"), es_run.get("problem")
    found = {"seed": es_run.get("seed"), "strategy": strategy.get("name") if isinstance(strategy, dict) else None,
             "num_params": problem.get("num_params") if isinstance(problem, dict) else None}
    return {k: v for k, v in found.items() if v is not None}


def load_params(run_dir: str | Path, which: str | int = "best") -> np.ndarray:
    """Parameters float32 (n,) saved in a run folder.

    which: "best" (best.npz: best held-out centre), "latest" (centre of the newest valid
    checkpoint) or an int k (centre of the checkpoint after k generations, if kept).
    Raises UsageError / CheckpointError with one line when the file is missing or damaged.
    """
    run_dir = Path(run_dir)
    expect = _identity(read_config(run_dir).get("es_run"))  # read_config: a clear error for "not a run folder"
    if which == "best":
        path = run_dir / "best.npz"
        if not path.with_suffix(".json").exists():
            raise CheckpointError(f"{run_dir} has no best.npz yet (no held-out evaluation has run); use which='latest'", str(path))
        arrays, _ = ckpt.load_arrays(path)
        if "params" not in arrays:
            raise CheckpointError(f"{path} holds no array 'params'; use which='latest'", str(path))
        ckpt.check_params(arrays["params"], path, expect.get("num_params"), advice="use which='latest'")
        return arrays["params"]
    if which == "latest":
        found = ckpt.load_latest(run_dir, expect)
        if found is None:
            raise CheckpointError(f"{run_dir} has no checkpoint yet", str(ckpt.checkpoint_dir(run_dir)))
        return found[0]["centre"]
    if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
        path = ckpt.checkpoint_path(run_dir, int(which))
        if not path.with_suffix(".json").exists():
            kept = [k for k, _ in ckpt.list_checkpoints(run_dir)]
            raise CheckpointError(f"{run_dir} has no checkpoint after {which} generations; kept: {kept}", str(path))
        arrays, meta = ckpt.load_arrays(path)
        ckpt.check_owner(meta, path, expect)
        ckpt.check_checkpoint(arrays, meta, path, expect.get("num_params"))
        return arrays["centre"]
    raise UsageError(f"which must be 'best', 'latest' or a generation count, got {which!r}")


def _positive(name: str, value: Any, allow_zero: bool = False) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise UsageError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}")
    return int(value)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)  # repr round-trips floats exactly
    return str(value)


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    ckpt.atomic_write_bytes(path, out.getvalue().encode())


def _progress_rows(path: Path) -> list[list[str]] | None:
    """The complete rows of progress.csv (a torn last line is dropped); None if there is no file."""
    try:
        with open(path, newline="", errors="replace") as f:
            table = list(csv.reader(f))
    except FileNotFoundError:
        return None
    except csv.Error as e:
        raise UsageError(f"{path} is damaged ({e}); restore it from a backup") from None
    return [row for row in table[1:] if len(row) == len(COLUMNS) and row[0].isascii() and row[0].isdigit()]


def _history_before(run_dir: Path, history: list[list[str]] | None, start: int, checkpoint: str | None) -> list[list[str]]:
    """The progress rows a resume from generation `start` keeps; UsageError when rows it needs are gone.

    Rows after the checkpoint are normal after a crash (the caller drops them); rows missing
    before it, or rows with no checkpoint at all, mean lost history or lost checkpoints.
    """
    def refuse(what: str, restore: str) -> UsageError:
        return UsageError(f"cannot resume {run_dir}: {what}; restore {restore} from a backup "
                          "or start a new run in another folder")

    if start and history is None:
        raise refuse(f"progress.csv is missing but {checkpoint} holds {start} generations, "
                     "so their history would be lost", "progress.csv")
    kept = [row for row in history or [] if int(row[0]) < start]
    if [int(row[0]) for row in kept] != list(range(start)):
        raise refuse(f"progress.csv does not hold one row for each of the {start} generations in {checkpoint} "
                     f"(it has {len(kept)}), so history was lost", "progress.csv")
    if checkpoint is None and any(int(row[0]) > 0 for row in history or []):
        raise refuse(f"progress.csv records {len(history)} generations but checkpoints/ holds no checkpoint",
                     "the checkpoints")
    return kept


def _append_row(path: Path, line: str) -> None:
    """Append one line to `path` and fsync it; a failed write cuts the file back to its old end,
    so a full disk leaves no torn row (and a fsynced row never lags its checkpoint)."""
    data = memoryview(line.encode())
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        end = os.fstat(fd).st_size
        try:
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, end)  # frees space, needs none
            raise
    finally:
        os.close(fd)


def _check_fresh(run_dir: Path) -> None:
    """UsageError unless `run_dir` may take a fresh run: new, or a folder holding nothing but
    what a start that failed leaves (.lock, temp files)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"{run_dir} is a file, not a folder; give a new or empty folder for the run")
    if (run_dir / "config.json").exists():
        raise UsageError(f"{run_dir} already holds a run; resume it (resume=True / --resume) or pick a new folder")
    remains = _remains(run_dir)
    if remains:
        raise UsageError(f"{run_dir} holds the remains of a run without config.json ({', '.join(remains)}); "
                         "move them away or pick a new folder")
    try:
        others = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK_NAME and not ckpt.is_temp_name(p.name)) \
            if run_dir.is_dir() else []
    except OSError as e:
        raise UsageError(f"cannot read {run_dir}: {e.strerror}; pick another folder") from None
    if others:
        raise UsageError(f"{run_dir} is not empty and not a run folder (it holds {others[0]!r}"
                         f"{f' and {len(others) - 1} more' if len(others) > 1 else ''}); pick an empty or new folder")


def _write_error(e: OSError, run_dir: Path, running: bool) -> ESError:
    """One line for a failed read or write of the run folder, saying what to do next."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free space"
    elif e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "make it writable"
    else:
        fix = "fix that"
    if (run_dir / "config.json").is_file():
        then = f"resume the run (resume=True / --resume {run_dir})"
    else:
        then = "start again (or pick another folder)"
    cls = StorageError if running else UsageError
    return cls(f"cannot write {e.filename or run_dir}: {e.strerror or e}; {fix} and {then}")


@contextlib.contextmanager
def _writing(run_dir: Path, running: bool):
    """Turn an OSError of the run folder's files into `_write_error`'s one line."""
    try:
        yield
    except OSError as e:
        raise _write_error(e, run_dir, running) from None


@contextlib.contextmanager
def _run_lock(run_dir: Path, create: bool):
    """Hold an exclusive flock on RUN_DIR/.lock (created with the folder when `create`).

    The lock, not the file, marks the folder in use: the kernel releases it when the holder
    exits or is killed, so the file is left in place (deleting it would race a new holder).
    """
    lock_path = run_dir / LOCK_NAME
    try:
        if create:
            run_dir.mkdir(parents=True, exist_ok=True)
        # read-only: a file held open for writing would keep the file system from being remounted read-only
        fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as e:
        raise _write_error(e, run_dir, running=False) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UsageError(f"{run_dir} is in use by another run (pid {holder}); wait for it or stop it") from None
        with _writing(run_dir, running=False):  # the flock belongs to fd, so closing this other handle keeps it
            lock_path.write_text(f"{os.getpid()}\n")
        yield
    finally:
        os.close(fd)  # releases the flock


def _check_same_run(run_dir: Path, saved: dict, mine: dict) -> None:
    """UsageError unless the settings that decide the numbers match the saved run's."""
    mine = json.loads(json.dumps(mine))  # compare as JSON gives it back (tuples -> lists)
    pairs = [(k, saved.get(k), mine[k]) for k in ("seed", "episodes", "eval_every", "eval_episodes")]
    saved_strategy = saved.get("strategy", {})
    pairs.append(("strategy", saved_strategy.get("name"), mine["strategy"]["name"]))
    pairs += [(f"strategy {k}", saved_strategy.get(k), v) for k, v in mine["strategy"].items() if k != "name"]
    for key, theirs, ours in pairs:
        if theirs != ours:
            raise UsageError(f"cannot resume {run_dir}: it was run with {key}={theirs!r}, not {ours!r}; "
                             "rebuild the settings from its config.json")


def _checkpoint_arrays(strategy: Any, state: Any) -> dict:
    """Checkpoint arrays: "centre" plus the strategy state under "state.*".

    A state field named "centre" equal to the centre is stored once (it is most of the
    bytes at 456,640 parameters); the meta flag state_centre_is_centre tells the loader.
    """
    state_arrays, meta = strategy.state_to_npz(state)
    centre = np.asarray(strategy.centre(state), np.float32)
    arrays = {"centre": centre, "__meta__": meta}
    for key, value in state_arrays.items():
        if key == "centre" and value.dtype == np.float32 and np.array_equal(value, centre):
            continue
        arrays[f"state.{key}"] = value
    return arrays


def evolve(
    problem: Any,
    strategy: Any,
    evaluator: Any,
    run_dir: str | Path,
    *,
    generations: int,
    episodes: int = 1,
    seed: int = 0,
    eval_every: int = 10,
    eval_episodes: int = 10,
    config: dict | None = None,
    resume: bool = False,
    progress: str | bool = "auto",
    keep_checkpoints: int = 3,
) -> RunResult:
    """Run (or resume) an evolution and record it in `run_dir`; see the module docstring.

    Args:
        problem: follows `es.problem.Problem`; its num_params must equal strategy.num_params.
        strategy: from `make_strategy`.
        evaluator: SerialEvaluator or RayEvaluator built on the same problem (not closed here).
        run_dir: an empty or new folder (fresh run) or an existing run folder (resume=True).
        generations: total generations of the run (a resume may raise it to continue further).
        episodes: episodes per member per generation (antithetic pairs share their env seeds).
        seed: the run seed; every random draw derives from it.
        eval_every: held-out evaluation period in generations (0 = only after the last).
        eval_episodes: held-out episodes per evaluation.
        config: the caller's resolved settings (JSON-able), stored in config.json; ignored
            on resume (config.json is kept, only es_run.generations is updated).
        resume: continue the run in `run_dir` from its newest valid checkpoint.
        progress: "auto", "bar", "lines"/"quiet", "none" (or True / False).
        keep_checkpoints: checkpoints kept on disk (older ones are deleted).
    """
    generations = _positive("generations", generations)
    episodes = _positive("episodes", episodes)
    seed = seeding.check_seed(seed)
    eval_every = _positive("eval_every", eval_every, allow_zero=True)
    eval_episodes = _positive("eval_episodes", eval_episodes)
    keep_checkpoints = _positive("keep_checkpoints", keep_checkpoints)
    resolve_mode(progress)
    if int(problem.num_params) != strategy.num_params:
        raise UsageError(f"the problem has {problem.num_params} parameters but the strategy was built for {strategy.num_params}")
    config = dict(config or {})
    clash = [k for k in RESERVED_CONFIG_KEYS if k in config]
    if clash and not resume:  # on resume config is ignored, so passing read_config()'s dict back is fine
        raise UsageError(f"config keys {clash} are reserved for evolve; rename them")
    run_dir = Path(run_dir)
    progress_path = run_dir / "progress.csv"
    es_run = {
        "generations": generations, "episodes": episodes, "seed": seed, "eval_every": eval_every,
        "eval_episodes": eval_episodes, "keep_checkpoints": keep_checkpoints,
        "strategy": strategy.config(), "evaluator": evaluator.describe(),
        "problem": {"class": f"{type(problem).__module__}.{type(problem).__qualname__}", "num_params": int(problem.num_params)},
    }

    # Checked before the lock file is created: a folder that is not ours is never written.
    if resume:
        read_config(run_dir)
    else:
        _check_fresh(run_dir)
    with _run_lock(run_dir, create=not resume):
        # -- start or resume (under the lock) -------------------------------------------
        start, env_steps, wall_s = 0, 0, 0.0
        best_mean: float | None = None
        best_gen: int | None = None
        state = None
        with _writing(run_dir, running=False):
            for folder in (run_dir, ckpt.checkpoint_dir(run_dir)):
                ckpt.remove_stale_temps(folder)
            if resume:
                saved = read_config(run_dir)
                saved_run = saved.get("es_run")
                if not isinstance(saved_run, dict):
                    raise UsageError(f"{run_dir}/config.json has no es_run settings; it was not written by evolve")
                _check_same_run(run_dir, saved_run, es_run)
                found = ckpt.load_latest(run_dir, _identity(es_run))
                history = _progress_rows(progress_path)
                if found is not None:
                    arrays, meta, path, damaged = found
                    for err in damaged:
                        print(f"warning: skipping damaged checkpoint: {err}", file=sys.stderr)
                    state_arrays = {k[len("state."):]: v for k, v in arrays.items() if k.startswith("state.")}
                    if meta.get("state_centre_is_centre"):
                        state_arrays["centre"] = arrays["centre"]
                    state = strategy.state_from_npz(state_arrays, meta["state"])
                    start, env_steps, wall_s = meta["generation"], meta["env_steps"], float(meta["wall_s"])
                    best_mean, best_gen = meta["best_eval_mean"], meta["best_generation"]
                kept = _history_before(run_dir, history, start, path.name if found is not None else None)
                if start > generations:
                    raise UsageError(f"{run_dir} already ran {start} generations; ask for at least that many")
                _write_rows(progress_path, kept)
                if saved_run.get("generations") != generations:  # keep config.json truthful about the target
                    saved["es_run"]["generations"] = generations
                    ckpt.atomic_write_bytes(run_dir / "config.json", (json.dumps(saved, indent=2) + "\n").encode())
            else:
                _check_fresh(run_dir)  # again under the lock: another run may have started here meanwhile
                full = {**config, "es_run": es_run, "versions": package_versions()}
                full["es_run"]["created_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
                try:
                    text = json.dumps(full, indent=2)
                except TypeError as e:
                    raise UsageError(f"config must be JSON-serialisable: {e}") from None
                ckpt.atomic_write_bytes(run_dir / "config.json", (text + "\n").encode())
                _write_rows(progress_path, [])
            ckpt.checkpoint_dir(run_dir).mkdir(exist_ok=True)
        if state is None:
            initial = np.asarray(problem.initial_params(seeding.init_seed(seed)))
            state = strategy.init(initial, seed)

        # -- the loop ---------------------------------------------------------------------
        eval_seeds = [[s] for s in seeding.held_out_seeds(seed, eval_episodes)]
        final_eval: tuple[float, float] | None = None
        with ProgressReporter(progress, generations, start) as reporter:
            for g in range(start, generations):
                t0 = time.perf_counter()
                population = strategy.ask(state)
                group_seeds = {grp: seeding.train_episode_seeds(seed, g, grp, episodes) for grp in set(population.groups)}
                ev = evaluator.evaluate(population.shared, population.members, [group_seeds[grp] for grp in population.groups])
                state = strategy.tell(state, population, ev.fitness)
                env_steps += int(ev.steps.sum())
                bytes_sent = ev.bytes_sent

                eval_mean = eval_std = None
                if (eval_every and (g + 1) % eval_every == 0) or g == generations - 1:
                    centre = np.asarray(strategy.centre(state), np.float32)
                    held = evaluator.evaluate(SearchPoint(centre, np.float32(0)), [CENTRE] * eval_episodes, eval_seeds)
                    returns = np.array([r for rs in held.returns for r in rs], np.float64)
                    if not np.all(np.isfinite(returns)):
                        raise EvaluationError(f"the held-out evaluation after generation {g} returned non-finite returns")
                    eval_mean, eval_std = float(returns.mean()), float(returns.std())
                    bytes_sent += held.bytes_sent
                    if best_mean is None or eval_mean > best_mean:
                        best_mean, best_gen = eval_mean, g
                        with _writing(run_dir, running=True):
                            ckpt.save_arrays(run_dir / "best.npz", {"params": centre},
                                             {"generation": g, "eval_mean": eval_mean, "eval_std": eval_std,
                                              "eval_episodes": eval_episodes, "seed": seed})
                    if g == generations - 1:
                        final_eval = (eval_mean, eval_std)
                gen_s = time.perf_counter() - t0
                wall_s += gen_s

                logged = strategy.log_values(state)
                f = ev.fitness
                row = [g, round(wall_s, 3), env_steps, float(f.mean()), float(f.max()), float(f.min()), float(f.std()),
                       float(logged["sigma"]), float(logged["lr"]), eval_mean, eval_std, bytes_sent]
                arrays = _checkpoint_arrays(strategy, state)
                meta = arrays.pop("__meta__")
                with _writing(run_dir, running=True):  # the row first: a checkpoint never runs ahead of its history
                    _append_row(progress_path, ",".join(_fmt(v) for v in row) + "\n")
                    ckpt.save_arrays(ckpt.checkpoint_path(run_dir, g + 1), arrays, {
                        "generation": g + 1, "env_steps": env_steps, "wall_s": wall_s, "seed": seed,
                        "strategy": strategy.name, "num_params": strategy.num_params,
                        "best_eval_mean": best_mean, "best_generation": best_gen, "state": meta,
                        "state_centre_is_centre": "state.centre" not in arrays,
                    })
                    ckpt.prune(run_dir, keep_checkpoints)
                reporter.update(g, float(f.max()), float(f.mean()), eval_mean, int(ev.steps.sum()) / max(gen_s, 1e-9))

    return RunResult(run_dir, np.asarray(strategy.centre(state), np.float32), generations, env_steps,
                     best_mean, best_gen, *(final_eval or (None, None)))
