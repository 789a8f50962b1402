"""Checkpoint files: `.npz` arrays plus a `.json` sidecar, no pickle, atomic, checksummed.

A checkpoint named `gen-000012` is the pair

    gen-000012.npz    the arrays, written with numpy's savez (loaded with allow_pickle=False)
    gen-000012.json   {"format", "npz", "sha256" of the npz bytes, "meta": {...}}

Both files are written to a temporary name, fsynced and moved into place with
`os.replace`; the JSON goes last and is the commit mark, so a crash leaves either the
complete new checkpoint or none. Loading re-hashes the npz; any mismatch, a missing
file or unreadable JSON raises CheckpointError naming the file, and older checkpoints in
the same folder are untouched and still load. `best.npz` / `best.json` use the same format.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np

from .errors import CheckpointError

FORMAT = "es-checkpoint/1"
_NAME = re.compile(r"^gen-(\d{6,})\.json$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: temp file in the same folder, fsync, os.replace, fsync folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable; not possible on every platform
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def save_arrays(npz_path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Save `arrays` (no object dtypes) to `npz_path` and `meta` (JSON-able) to its .json sidecar."""
    npz_path = Path(npz_path)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    data = buffer.getvalue()
    atomic_write_bytes(npz_path, data)
    sidecar = {"format": FORMAT, "npz": npz_path.name, "sha256": hashlib.sha256(data).hexdigest(), "meta": meta}
    atomic_write_bytes(npz_path.with_suffix(".json"), (json.dumps(sidecar, indent=1) + "\n").encode())


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
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{json_path} is damaged ({type(e).__name__}); delete it and use an earlier checkpoint", str(json_path)) from None
    try:
        data = npz_path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{npz_path} is missing; delete {json_path.name} and use an earlier checkpoint", str(npz_path)) from None
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


def load_latest(run_dir: Path) -> tuple[dict, dict, Path, list[CheckpointError]] | None:
    """The newest checkpoint that verifies: (arrays, meta, npz path, errors of newer damaged ones).

    Returns None when the run has no checkpoint at all. Raises the newest CheckpointError
    when checkpoints exist but none verifies.
    """
    damaged: list[CheckpointError] = []
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            arrays, meta = load_arrays(path)
            return arrays, meta, path, damaged
        except CheckpointError as e:
            damaged.append(e)
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
