"""The run folder: `RunFolder` owns config.json, progress.csv, checkpoints/, best.npz, the lock
and resume; `make_run_dir`, `read_config`, `load_params` read and name folders from outside.

The folder's layout, refusals and resume rules are described in `es.run`'s docstring (the
contract); this module is where they are kept. Every file is written through `es.checkpoint`'s
atomic writers except progress.csv rows, which are appended (`append_line`) and fsynced.
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
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint as ckpt
from . import seeding
from .errors import CheckpointError, ESError, StorageError, UsageError

COLUMNS = ("generation", "wall_s", "env_steps", "fitness_mean", "fitness_max", "fitness_min", "fitness_std",
           "sigma", "lr", "eval_mean", "eval_std", "bytes_sent")
LOCK_NAME = ".lock"
_REMAINS = ("checkpoints", "progress.csv", "best.npz", "best.json")  # what a run leaves besides config.json
# Strategy settings that older run folders lack, and why such a run cannot go on with this version.
_NEWER_SETTINGS = {"noise_table_size": "its noise came from per-member seeds; this version reads it from a seeded "
                                       "noise table, a different noise stream"}
_VERSIONED = ("numpy", "scipy", "numba", "ray", "cma", "rich", "torch", "gymnasium", "pybullet", "hebbian-meta")


# -- naming and reading folders from outside a run -------------------------------------------

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


def load_params(run_dir: str | Path, which: str | int = "best") -> np.ndarray:
    """Parameters float32 (n,) saved in a run folder.

    which: "best" (best.npz: best held-out centre), "latest" (centre of the newest valid
    checkpoint) or an int k (centre of the checkpoint after k generations, if kept).
    Raises UsageError / CheckpointError with one line when the file is missing or damaged.
    """
    run_dir = Path(run_dir)
    expect = identity(read_config(run_dir).get("es_run"))  # read_config: a clear error for "not a run folder"
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


def identity(es_run: Any) -> dict:
    """What each checkpoint's meta records about its run (seed, strategy name, num_params)."""
    es_run = es_run if isinstance(es_run, dict) else {}
    strategy, problem = es_run.get("strategy"), es_run.get("problem")
    found = {"seed": es_run.get("seed"), "strategy": strategy.get("name") if isinstance(strategy, dict) else None,
             "num_params": problem.get("num_params") if isinstance(problem, dict) else None}
    return {k: v for k, v in found.items() if v is not None}


def _remains(run_dir: Path) -> list[str]:
    return [name for name in _REMAINS if (run_dir / name).exists()]


# -- progress.csv rows -----------------------------------------------------------------------

def format_row(values: list) -> str:
    """One progress.csv line: floats by repr (they round-trip exactly), None and NaN as empty cells."""
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return "" if math.isnan(value) else repr(value)
        return str(value)

    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([cell(v) for v in values])
    return out.getvalue()


def append_line(path: Path, line: str) -> None:
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


# -- the folder of one run -------------------------------------------------------------------

@dataclass(frozen=True)
class Totals:
    """The run so far, as each checkpoint records it: completed generations, training env steps,
    training wall-clock seconds (summed over resumes) and the best held-out evaluation."""

    generations: int = 0
    env_steps: int = 0
    wall_s: float = 0.0
    best_eval_mean: float | None = None
    best_generation: int | None = None

    def after(self, generation: int, steps: int, seconds: float, eval_mean: float | None) -> Totals:
        """The totals once 0-based `generation` (with `steps` env steps in `seconds`, and the
        held-out `eval_mean` of its centre, None if not evaluated) is done."""
        better = eval_mean is not None and (self.best_eval_mean is None or eval_mean > self.best_eval_mean)
        return Totals(generation + 1, self.env_steps + steps, self.wall_s + seconds,
                      eval_mean if better else self.best_eval_mean, generation if better else self.best_generation)


class RunFolder:
    """One run's folder. `create` (fresh run) and `open` (resume) check it before anything is
    written; then, inside `with folder.lock():`, `start` or `resume` prepares it and the
    recorders write the rows, checkpoints and best.npz through it.

    Writes during the run map an OSError to one StorageError line (`write_error`); writes
    while starting map it to a UsageError.
    """

    def __init__(self, path: str | Path, fresh: bool):
        self.path, self.fresh = Path(path), fresh

    @classmethod
    def create(cls, path: str | Path) -> RunFolder:
        """A folder for a fresh run; UsageError (nothing written) unless it may take one."""
        folder = cls(path, fresh=True)
        folder.check_fresh()
        return folder

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """An existing run folder to resume; UsageError (nothing written) if it is not one."""
        read_config(path)
        return cls(path, fresh=False)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def progress_path(self) -> Path:
        return self.path / "progress.csv"

    @property
    def best_path(self) -> Path:
        return self.path / "best.npz"

    # -- refusals, lock and write errors ---------------------------------------------------

    def check_fresh(self) -> None:
        """UsageError unless the folder may take a fresh run: new, or a folder holding nothing but
        what a start that failed leaves (.lock, temp files)."""
        run_dir = self.path
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

    def write_error(self, e: OSError, running: bool) -> ESError:
        """One line for a failed read or write of the folder, saying what to do next."""
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = "free space"
        elif e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            fix = "make it writable"
        else:
            fix = "fix that"
        if self.config_path.is_file():
            then = f"resume the run (resume=True / --resume {self.path})"
        else:
            then = "start again (or pick another folder)"
        cls = StorageError if running else UsageError
        return cls(f"cannot write {e.filename or self.path}: {e.strerror or e}; {fix} and {then}")

    @contextlib.contextmanager
    def writing(self, running: bool) -> Iterator[None]:
        """Turn an OSError of the folder's files into `write_error`'s one line."""
        try:
            yield
        except OSError as e:
            raise self.write_error(e, running) from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunFolder]:
        """Hold an exclusive flock on RUN_DIR/.lock (a fresh run's folder is created with it).

        The lock, not the file, marks the folder in use: the kernel releases it when the holder
        exits or is killed, so the file is left in place (deleting it would race a new holder).
        """
        lock_path = self.path / LOCK_NAME
        try:
            if self.fresh:
                self.path.mkdir(parents=True, exist_ok=True)
            # read-only: a file held open for writing would keep the file system from being remounted read-only
            fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError as e:
            raise self.write_error(e, running=False) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                raise UsageError(f"{self.path} is in use by another run (pid {holder}); wait for it or stop it") from None
            with self.writing(running=False):  # the flock belongs to fd, so closing this other handle keeps it
                lock_path.write_text(f"{os.getpid()}\n")
            yield self
        finally:
            os.close(fd)  # releases the flock

    # -- starting and resuming (under the lock) --------------------------------------------

    def start(self, config: dict, es_run: dict) -> Totals:
        """Write config.json (`config` + "es_run" + "versions") and an empty progress.csv."""
        with self.writing(running=False):
            self._remove_stale_temps()
            self.check_fresh()  # again under the lock: another run may have started here meanwhile
            created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            full = {**config, "es_run": {**es_run, "created_utc": created}, "versions": package_versions()}
            try:
                text = json.dumps(full, indent=2)
            except TypeError as e:
                raise UsageError(f"config must be JSON-serialisable: {e}") from None
            ckpt.atomic_write_bytes(self.config_path, (text + "\n").encode())
            self._write_progress([])
            ckpt.checkpoint_dir(self.path).mkdir(exist_ok=True)
        return Totals()

    def resume(self, es_run: dict, strategy: Any) -> tuple[Any, Totals]:
        """(strategy state, totals) of the newest checkpoint that verifies ((None, Totals()) when
        there is none yet), after the checks of the module docstring; progress rows written after
        it are dropped and config.json's es_run.generations, eval_every and stop are set to this run's."""
        run_dir, generations = self.path, es_run["generations"]
        state, totals, checkpoint = None, Totals(), None
        with self.writing(running=False):
            self._remove_stale_temps()
            saved = read_config(run_dir)
            saved_run = saved.get("es_run")
            if not isinstance(saved_run, dict):
                raise UsageError(f"{run_dir}/config.json has no es_run settings; it was not written by evolve")
            self._check_same_run(saved_run, es_run)
            found = ckpt.load_latest(run_dir, identity(es_run))
            history = self.progress_rows()
            if found is not None:
                arrays, meta, path, damaged = found
                checkpoint = path.name
                for err in damaged:
                    print(f"warning: skipping damaged checkpoint: {err}", file=sys.stderr)
                state = ckpt.load_strategy_state(strategy, arrays, meta)
                totals = Totals(meta["generation"], meta["env_steps"], float(meta["wall_s"]),
                                meta["best_eval_mean"], meta["best_generation"])
            kept = self._history_before(history, totals.generations, checkpoint)
            if totals.generations > generations:
                raise UsageError(f"{run_dir} already ran {totals.generations} generations; ask for at least that many")
            self._write_progress(kept)
            # Keep config.json truthful about the target, evaluation period and stop rule now in force.
            changed = {k: es_run[k] for k in ("generations", "eval_every", "stop") if saved_run.get(k) != es_run[k]}
            if changed:
                saved["es_run"].update(changed)
                ckpt.atomic_write_bytes(self.config_path, (json.dumps(saved, indent=2) + "\n").encode())
            ckpt.checkpoint_dir(run_dir).mkdir(exist_ok=True)
        return state, totals

    def _remove_stale_temps(self) -> None:
        for folder in (self.path, ckpt.checkpoint_dir(self.path)):
            ckpt.remove_stale_temps(folder)

    def _check_same_run(self, saved: dict, mine: dict) -> None:
        """UsageError unless the settings that decide the numbers match the saved run's.

        eval_every may change: when the centre is evaluated does not change the search. The
        held-out episodes may not (best.npz compares evaluations on the same seeds)."""
        mine = json.loads(json.dumps(mine))  # compare as JSON gives it back (tuples -> lists)
        pairs = [(k, saved.get(k), mine[k]) for k in ("seed", "episodes", "eval_episodes")]
        saved_strategy = saved.get("strategy", {})
        if saved_strategy.get("name") == mine["strategy"]["name"]:
            for key, why in _NEWER_SETTINGS.items():
                if key in mine["strategy"] and key not in saved_strategy:
                    raise UsageError(f"cannot resume {self.path}: it was started by an older version without the "
                                     f"strategy setting {key} ({why}), so it would not continue bit for bit; finish "
                                     "it with that version or start a new run")
        pairs.append(("strategy", saved_strategy.get("name"), mine["strategy"]["name"]))
        pairs += [(f"strategy {k}", saved_strategy.get(k), v) for k, v in mine["strategy"].items() if k != "name"]
        for key, theirs, ours in pairs:
            if theirs != ours:
                raise UsageError(f"cannot resume {self.path}: it was run with {key}={theirs!r}, not {ours!r}; "
                                 "rebuild the settings from its config.json")

    def _history_before(self, history: list[list[str]] | None, start: int, checkpoint: str | None) -> list[list[str]]:
        """The progress rows a resume from generation `start` keeps; UsageError when rows it needs are gone.

        Rows after the checkpoint are normal after a crash (the caller drops them); rows missing
        before it, or rows with no checkpoint at all, mean lost history or lost checkpoints.
        """
        def refuse(what: str, restore: str) -> UsageError:
            return UsageError(f"cannot resume {self.path}: {what}; restore {restore} from a backup "
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

    # -- progress.csv ----------------------------------------------------------------------

    def progress_rows(self) -> list[list[str]] | None:
        """The complete rows of progress.csv (a torn last line is dropped); None if there is no file."""
        path = self.progress_path
        try:
            with open(path, newline="", errors="replace") as f:
                table = list(csv.reader(f))
        except FileNotFoundError:
            return None
        except csv.Error as e:
            raise UsageError(f"{path} is damaged ({e}); restore it from a backup") from None
        return [row for row in table[1:] if len(row) == len(COLUMNS) and row[0].isascii() and row[0].isdigit()]

    def held_out_means(self) -> list[float]:
        """The centre's held-out means recorded in progress.csv, oldest first."""
        column = COLUMNS.index("eval_mean")
        return [float(row[column]) for row in self.progress_rows() or [] if row[column] != ""]

    def _write_progress(self, rows: list[list[str]]) -> None:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        ckpt.atomic_write_bytes(self.progress_path, out.getvalue().encode())

    def append_progress(self, values: list) -> None:
        """Append one row (values in COLUMNS order, see `format_row`), fsynced; no torn row on failure."""
        with self.writing(running=True):
            append_line(self.progress_path, format_row(values))

    # -- checkpoints and best.npz ----------------------------------------------------------

    def save_checkpoint(self, arrays: dict, meta: dict, keep: int) -> None:
        """Save checkpoints/gen-<meta["generation"]>.npz/.json, then keep only the newest `keep`."""
        with self.writing(running=True):
            ckpt.save_arrays(ckpt.checkpoint_path(self.path, meta["generation"]), arrays, meta)
            ckpt.prune(self.path, keep)

    def save_best(self, params: np.ndarray, meta: dict) -> None:
        """Replace best.npz/.json with `params` (array "params") and `meta`."""
        with self.writing(running=True):
            ckpt.save_arrays(self.best_path, {"params": params}, meta)
