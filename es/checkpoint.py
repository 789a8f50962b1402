"""Checkpoint files: `.npz` arrays plus a `.json` sidecar, no pickle, atomic, checksummed.

A checkpoint named `gen-000012` is the pair

    gen-000012.npz    the arrays, written with numpy's savez (loaded with allow_pickle=False)
    gen-000012.json   {"format", "npz", "sha256" of the npz bytes, "meta": {...}}

Both files are first written in full to temporary names `.NAME.tmp-PID` (fsynced), then
moved into place with `os.replace`, the JSON last: it is the commit mark, so a crash
leaves either the complete new checkpoint or an npz without its JSON (never completed),
and a failed write (full disk) leaves the old pair as it was and no temp file. Temp files
of a process killed mid-write are removed by `remove_stale_temps`. Loading re-hashes the
npz; any mismatch, a missing file or unreadable JSON raises CheckpointError naming the
file, and older checkpoints in the same folder are untouched and still load.
`check_checkpoint` / `check_params` reject files that verify but hold the wrong content.
`best.npz` / `best.json` use the same format. `strategy_arrays` / `load_strategy_state` turn a
strategy state into checkpoint arrays and back.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import CheckpointError

FORMAT = "es-checkpoint/1"
_NAME = re.compile(r"^gen-(\d{6,})\.json$")
_FILE = re.compile(r"^gen-(\d{6,})\.(?:json|npz)$")
_TEMP = re.compile(r"^\..+\.tmp-(\d+)$")


def remove_quietly(path: Path) -> None:
    """Delete `path` if it exists; an error is ignored (it is only ever a temp file or a probe)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def temp_path(path: Path) -> Path:
    """The temp name every writer here uses for `path`: `.NAME.tmp-PID` in the same folder,
    so that one left by a killed process is recognised (`remove_stale_temps`)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _write_temp(path: Path, write: Callable[[Path], None]) -> Path:
    """Create `path`'s temp file with `write(temp)` and fsync it; on failure remove the temp and
    raise OSError naming `path` (not the temp), so a full disk leaves nothing behind."""
    tmp = temp_path(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    except BaseException as e:
        remove_quietly(tmp)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    return tmp


def _replace(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


def _fsync_dir(folder: Path) -> None:
    try:  # make the rename itself durable; not possible on every platform
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Create `path` atomically with `write(temp path)` (e.g. a figure's savefig): temp file in
    the same folder, fsync, os.replace, fsync folder. On failure (OSError naming `path`) the
    old file is untouched and the temp file removed. The one atomic writer of the project."""
    path = Path(path)
    _replace(_write_temp(path, write), path)
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`atomic_write` of the bytes `data`."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temp files `.NAME.tmp-PID` in `folder` whose process is gone (killed mid-write).

    Only that exact pattern, only directly in `folder`; a live writer's temp file is kept.
    Returns the paths removed.
    """
    folder = Path(folder)
    removed = []
    for entry in folder.iterdir() if folder.is_dir() else []:
        m = _TEMP.match(entry.name)
        if m and entry.is_file() and not entry.is_symlink() and not _alive(int(m.group(1))):
            remove_quietly(entry)
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def is_temp_name(name: str) -> bool:
    """Whether `name` is a temp file name of `atomic_write_bytes` / `save_arrays`."""
    return bool(_TEMP.match(name))


def save_arrays(npz_path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Save `arrays` (no object dtypes) to `npz_path` and `meta` (JSON-able) to its .json sidecar."""
    npz_path = Path(npz_path)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    data = buffer.getvalue()
    json_path = npz_path.with_suffix(".json")
    sidecar = {"format": FORMAT, "npz": npz_path.name, "sha256": hashlib.sha256(data).hexdigest(), "meta": meta}
    # Both temps are complete before either name changes: a full disk while overwriting
    # best.npz must not leave the new npz beside the old JSON (a pair that fails its checksum).
    tmp_npz = _write_temp(npz_path, lambda tmp: tmp.write_bytes(data))
    try:
        text = (json.dumps(sidecar, indent=1) + "\n").encode()
        tmp_json = _write_temp(json_path, lambda tmp: tmp.write_bytes(text))
    except BaseException:
        remove_quietly(tmp_npz)
        raise
    try:
        _replace(tmp_npz, npz_path)
    except BaseException:
        remove_quietly(tmp_json)
        raise
    _replace(tmp_json, json_path)  # the commit mark, last
    _fsync_dir(npz_path.parent)


def load_arrays(npz_path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Load and verify a file pair written by `save_arrays`; returns (arrays, meta).

    Raises CheckpointError (one line, naming the file) if anything is missing or damaged.
    """
    npz_path = Path(npz_path)
    json_path = npz_path.with_suffix(".json")
    try:
        sidecar = json.loads(json_path.read_text())
        expected = sidecar["sha256"]
        meta = sidecar["meta"]
    except FileNotFoundError:
        raise CheckpointError(f"{json_path} is missing; the checkpoint was never completed", str(json_path)) from None
    except OSError as e:
        raise CheckpointError(f"cannot read {json_path}: {e.strerror}", str(json_path)) from None
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{json_path} is damaged ({type(e).__name__}); delete it and use an earlier checkpoint", str(json_path)) from None
    try:
        data = npz_path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{npz_path} is missing; delete {json_path.name} and use an earlier checkpoint", str(npz_path)) from None
    except OSError as e:
        raise CheckpointError(f"cannot read {npz_path}: {e.strerror}", str(npz_path)) from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(f"{npz_path} is damaged (sha256 mismatch); delete it and use an earlier checkpoint", str(npz_path))
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as e:  # checksum matched but numpy cannot read it: written by something else
        raise CheckpointError(f"{npz_path} cannot be read as npz ({type(e).__name__}: {e})", str(npz_path)) from None
    return arrays, meta


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: Path, completed: int) -> Path:
    """Path of the checkpoint taken after `completed` generations."""
    return checkpoint_dir(run_dir) / f"gen-{completed:06d}.npz"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(completed generations, npz path) of every committed checkpoint, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.with_suffix(".npz")))
    return sorted(found)


def check_params(params: np.ndarray, path: Path, num_params: int | None = None, what: str = "params",
                 advice: str = "delete it and use an earlier one") -> None:
    """CheckpointError naming `path` (and saying `advice`) unless `params` is a finite float32
    vector (of `num_params` values)."""
    shape = f"({num_params},)" if num_params is not None else "(n,)"
    if params.dtype != np.float32 or params.ndim != 1 or (num_params is not None and params.size != num_params):
        problem = f"{what} is {params.dtype} {params.shape}, not float32 {shape}"
    elif not np.all(np.isfinite(params)):
        problem = f"{what} holds NaN or inf"
    else:
        return
    raise CheckpointError(f"{path} is not a valid checkpoint of this run ({problem}); {advice}", str(path))


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0  # JSON true is not a count


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_checkpoint(arrays: dict, meta: dict, path: Path, num_params: int | None = None) -> None:
    """CheckpointError naming `path` unless a checkpoint that verified also holds what `evolve`
    resumes from: a finite float32 "centre" (of `num_params` values), a whole "generation"
    equal to the one in the file name, whole "env_steps", finite "wall_s" >= 0, "best_eval_mean"
    (finite or None), "best_generation" (whole or None) and a "state" object.
    """
    m = _FILE.match(Path(path).name)
    named = int(m.group(1)) if m else None
    problem = None
    if "centre" not in arrays:
        problem = 'no array "centre"'
    elif not isinstance(meta, dict):
        problem = "meta is not a JSON object"
    elif not _whole(meta.get("generation")):
        problem = f"meta generation={meta.get('generation')!r}"
    elif named is not None and meta["generation"] != named:
        problem = f"meta generation={meta['generation']} but the file name says {named}"
    else:
        checks = (("env_steps", _whole(meta.get("env_steps"))),
                  ("wall_s", _finite(meta.get("wall_s")) and meta["wall_s"] >= 0),
                  ("best_eval_mean", meta.get("best_eval_mean") is None or _finite(meta["best_eval_mean"])),
                  ("best_generation", meta.get("best_generation") is None or _whole(meta["best_generation"])),
                  ("state", isinstance(meta.get("state"), dict)))
        bad = [key for key, ok in checks if not ok]
        if bad:
            problem = f"meta {bad[0]}={meta.get(bad[0])!r}"
    if problem is None:
        return check_params(arrays["centre"], path, num_params, "centre")
    raise CheckpointError(f"{path} is not a valid checkpoint of this run ({problem}); delete it and use an earlier one", str(path))


def check_owner(meta: dict, path: Path, expect: dict) -> None:
    """CheckpointError unless the checkpoint's meta records the run `expect` describes
    (e.g. {"seed": 5, "strategy": "pgpe", "num_params": 6}): a file copied in from another run."""
    if not isinstance(meta, dict):
        return  # damaged, not foreign: check_checkpoint reports it
    for key, value in expect.items():
        if key in meta and meta[key] != value:
            raise CheckpointError(f"{path} was written by another run ({key}={meta[key]!r}, not {value!r}); "
                                  f"move it out of {Path(path).parent} and try again", str(path))


def _checkpoint_files(run_dir: Path) -> list[tuple[int, Path]]:
    """(generation, npz path) for every gen-* file, committed or not, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = {}
    for entry in folder.iterdir():
        m = _FILE.match(entry.name)
        if m:
            found[int(m.group(1))] = entry.with_suffix(".npz")
    return sorted(found.items())


def load_latest(run_dir: Path, expect: dict | None = None) -> tuple[dict, dict, Path, list[CheckpointError]] | None:
    """The newest checkpoint that verifies: (arrays, meta, npz path, errors of newer damaged ones).

    An npz without its JSON (a checkpoint never completed) counts as damaged, so a folder
    whose JSON files are all lost is not mistaken for a run without checkpoints. With
    `expect` (the run's seed, strategy name and num_params) a checkpoint whose content is
    wrong (`check_checkpoint`) is skipped like a damaged one, and one written by another run
    (`check_owner`) raises at once: continuing past it would overwrite it.
    Returns None when the run has no checkpoint file at all. Raises the newest CheckpointError
    when checkpoint files exist but none verifies.
    """
    damaged: list[CheckpointError] = []
    for _, path in reversed(_checkpoint_files(run_dir)):
        try:
            arrays, meta = load_arrays(path)
        except CheckpointError as e:
            damaged.append(e)
            continue
        if expect is not None:
            check_owner(meta, path, expect)  # not skipped: resuming past another run's file would overwrite it
            try:
                check_checkpoint(arrays, meta, path, expect.get("num_params"))
            except CheckpointError as e:
                damaged.append(e)
                continue
        return arrays, meta, path, damaged
    if damaged:
        raise CheckpointError(f"no usable checkpoint in {checkpoint_dir(run_dir)}: {damaged[0]}", damaged[0].path)
    return None


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (npz + json)."""
    for _, path in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        for p in (path.with_suffix(".json"), path):  # JSON first: a half-deleted pair is never 'committed'
            try:
                p.unlink()
            except FileNotFoundError:
                pass


def strategy_arrays(strategy, state) -> tuple[dict[str, np.ndarray], dict]:
    """A strategy state as checkpoint content: (arrays, state meta), arrays = "centre" plus the
    state's arrays under "state.*".

    A state field named "centre" equal to the centre is stored once (it is most of the
    bytes at 456,640 parameters); the checkpoint meta flag state_centre_is_centre
    ("state.centre" not in arrays) tells `load_strategy_state`.
    """
    state_arrays, meta = strategy.state_to_npz(state)
    centre = np.asarray(strategy.centre(state), np.float32)
    arrays = {"centre": centre}
    for key, value in state_arrays.items():
        if key == "centre" and value.dtype == np.float32 and np.array_equal(value, centre):
            continue
        arrays[f"state.{key}"] = value
    return arrays, meta


def load_strategy_state(strategy, arrays: dict[str, np.ndarray], meta: dict):
    """The strategy state saved by `strategy_arrays` in a checkpoint with `meta` (its full meta)."""
    state_arrays = {k[len("state."):]: v for k, v in arrays.items() if k.startswith("state.")}
    if meta.get("state_centre_is_centre"):
        state_arrays["centre"] = arrays["centre"]
    return strategy.state_from_npz(state_arrays, meta["state"])
