"""Fitness curves of one or more runs, read from their progress.csv (see `es.run.COLUMNS`).

    plot_runs(["runs/CarRacing-v3/a", "runs/CarRacing-v3/b"], labels=["ABCD_lr", "static"])

Three panels, the same curves against generations, training env steps and training wall
time (the last two compare runs whose episodes differ in length, or that ran on different
machines, at equal cost): for each run (one colour) the population mean (solid), the population max (dashed) and the held-out
evaluation of the centre (markers) with its per-episode std as a band. Generic: it knows
run folders and progress.csv, nothing about what was evolved.

Output files (this module's figures, and the videos, GIFs and eval.json of `hebbian.watch` /
`hebbian.evaluate`) go through two helpers: `check_output` before any work (a missing
folder, a path that is a folder, a read-only place or a full disk: a one-line UsageError),
and `write_atomically` / `OutputError` when the write fails anyway (a one-line ESError,
exit status 1, no temporary file left behind).
"""
from __future__ import annotations

import csv
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from . import checkpoint as ckpt
from .errors import ESError, UsageError, first_line

FIGURE_SIZE_IN = (18.0, 5.0)
FIGURE_DPI = 100
"""Figures are FIGURE_SIZE_IN x FIGURE_DPI = 1800 x 500 pixels (PNG)."""
FORMATS = ("png", "svg", "pdf")
NEEDED = ("generation", "wall_s", "env_steps", "fitness_mean", "fitness_max", "eval_mean", "eval_std")


# -- output files ----------------------------------------------------------------------------
class OutputError(ESError):
    """An output file (figure, video, GIF, eval.json) could not be written after the work ran
    (disk full, folder removed or made read-only meanwhile). One line; exit status 1."""


class TornLineWarning(UserWarning):
    """progress.csv ends in an incomplete line (a run killed, or still writing, mid-line); it is left out."""


def check_output(path: str | Path, what: str = "output", hint: str = "choose another file") -> Path:
    """Check, before any work, that a file can be written at `path`; returns it as a Path.

    Folders on the way that do not exist yet are fine (the writers create them) as long as
    the nearest existing one is a writable folder. The check writes and removes a probe
    file there (nothing is left behind), so a read-only mount is caught even for root, and
    refuses a folder with no free space left.

    Raises UsageError (one line: which file, what is wrong, `hint`) when `path` is a
    folder or another non-regular file, when a part of the way is a file, or when the place
    is read-only, full or otherwise not writable.
    """
    path = Path(path)
    if str(path) in ("", "."):
        raise UsageError(f"the {what} file name is empty; {hint}")
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder, not a file; give a file name inside it")
    if path.exists() and not path.is_file():
        raise UsageError(f"{what} {path} exists and is not a regular file; {hint}")
    folder = path.parent
    while not folder.exists():
        if folder.is_symlink():  # a dangling link
            raise UsageError(f"cannot write {what} {path}: {folder} is a broken link; {hint}")
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {what} {path}: {folder} is a file, not a folder; {hint}")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name[:40]}.probe-")
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
            os.unlink(probe)
        stat = os.statvfs(folder)
        if stat.f_bavail * stat.f_frsize == 0:
            raise OSError(28, os.strerror(28))  # ENOSPC
    except OSError as e:
        raise UsageError(f"cannot write {what} {path}: {first_line(e, False)}; {hint}") from None
    return path


def write_atomically(path: str | Path, write: Callable[[Path], None], what: str = "output") -> Path:
    """Create `path` through `write(temporary path)` with `es.checkpoint.atomic_write` (a reader
    never sees half a file). Missing folders are created. On failure the temporary file is
    removed and OutputError (one line) is raised; an existing `path` is left as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ckpt.atomic_write(path, write)
    except OSError as e:
        raise OutputError(f"cannot write {what} {path}: {first_line(e, False)}; free some space or choose another place") from None
    return path


def read_progress(run_dir: str | Path) -> dict[str, np.ndarray]:
    """progress.csv as float64 (G,) columns keyed by its header (`es.run.COLUMNS`); empty cells are NaN.

    A torn last line (a run killed, or still writing, mid-line) is left out with a
    TornLineWarning. Raises UsageError (one line) when the folder or the file is missing,
    unreadable or damaged (not text, a short line before the last, a non-numeric value), or
    holds no generation yet.
    """
    run_dir = Path(run_dir)
    path = run_dir / "progress.csv"
    if not run_dir.exists():
        raise UsageError(f"run folder {run_dir} does not exist")
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is a file, not a run folder; give a folder written by evolve")
    if path.exists() and not path.is_file():
        raise UsageError(f"{path} is not a file; the run folder is damaged")
    if not path.is_file():
        raise UsageError(f"{run_dir} has no progress.csv; give a run folder written by evolve")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
        rows = list(csv.reader(text.splitlines(keepends=True)))
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not text (byte {e.start} cannot be decoded); the file is damaged") from None
    except csv.Error as e:
        raise UsageError(f"{path} is damaged ({e}); the run folder is damaged") from None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {first_line(e, False)}") from None
    missing = [c for c in NEEDED if not rows or c not in rows[0]]
    if missing:
        raise UsageError(f"{path} has no column(s) {', '.join(missing)} in its header; it was not written by evolve")
    header, body = rows[0], rows[1:]
    while body and not body[-1]:  # blank trailing lines
        body.pop()
    if body and not text.endswith(("\n", "\r")):  # evolve ends every line: this one is torn, maybe mid-number
        warnings.warn(f"{path}: its last line is incomplete (a run stopped or still writing mid-line); "
                      "that line is left out", TornLineWarning, stacklevel=2)
        body.pop()
    torn = [i for i, r in enumerate(body) if len(r) != len(header)]
    if torn:
        raise UsageError(f"{path} line {torn[0] + 2} has {len(body[torn[0]])} values, the header {len(header)}; "
                         "the file is damaged")
    if not body:
        raise UsageError(f"{path} has no generation yet; plot again after the first one")
    columns = {}
    for k, name in enumerate(header):
        try:
            columns[name] = np.array([float(r[k]) if r[k] != "" else np.nan for r in body], np.float64)
        except ValueError:
            raise UsageError(f"{path} has a non-numeric value in column {name!r}; the file is damaged") from None
    return columns


def default_label(run_dir: str | Path) -> str:
    """`<parent>/<run>` of a run folder, e.g. CarRacing-v3/20261128T101500Z-0."""
    run_dir = Path(run_dir).resolve()
    return f"{run_dir.parent.name}/{run_dir.name}"


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 3 * 3600:
        return 3600.0, "h"
    if seconds >= 3 * 60:
        return 60.0, "min"
    return 1.0, "s"


def _steps_unit(steps: float) -> tuple[float, str]:
    if steps >= 3e6:
        return 1e6, "millions"
    if steps >= 3e3:
        return 1e3, "thousands"
    return 1.0, ""


def default_output(run_dirs: Sequence[str | Path], fmt: str = "png") -> Path:
    """`<first run>/fitness.<fmt>`: the plot lives next to the data it shows."""
    return Path(run_dirs[0]) / f"fitness.{fmt}"


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path | None = None, *, labels: Sequence[str] | None = None,
              fmt: str | None = None, title: str | None = None) -> Path:
    """Plot the fitness curves of `run_dirs` overlaid and write the figure; returns its path.

    Args:
        run_dirs: run folders (each with progress.csv).
        out: output file; None = `default_output`. Its suffix picks the format unless `fmt`.
        labels: one legend label per run (default: `default_label`).
        fmt: "png" (default), "svg" or "pdf".
        title: figure title (default: the number of runs).

    Raises UsageError (one line) for bad arguments, unreadable run folders and an output
    that cannot be written (checked before drawing: `check_output`); OutputError when the
    write fails anyway (no temporary file is left, an existing figure stays as it was).
    """
    if not run_dirs:
        raise UsageError("give at least one run folder")
    if labels is not None and len(labels) != len(run_dirs):
        raise UsageError(f"{len(labels)} labels for {len(run_dirs)} runs; give one label per run")
    out_given = out is not None
    if fmt is None:
        suffix = Path(out).suffix.lstrip(".").lower() if out is not None else ""
        fmt = suffix or "png"
    if fmt not in FORMATS:
        raise UsageError(f"unknown image format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out) if out is not None else default_output(run_dirs, fmt)
    if out.suffix.lstrip(".").lower() != fmt:
        raise UsageError(f"output {out} does not end in .{fmt}")
    data = [read_progress(d) for d in run_dirs]  # read all first: a bad folder fails before drawing
    check_output(out, "figure", "choose another file" if out_given else "write it elsewhere with --out FILE")
    labels = list(labels) if labels is not None else [default_label(d) for d in run_dirs]

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=FIGURE_SIZE_IN, dpi=FIGURE_DPI)
    FigureCanvasAgg(fig)
    ax_gen, ax_steps, ax_time = fig.subplots(1, 3)
    times = [float(t) for c in data for t in c["wall_s"] if math.isfinite(t)]
    scale, unit = _time_unit(max(times, default=0.0))
    steps = [float(t) for c in data for t in c["env_steps"] if math.isfinite(t)]
    steps_scale, steps_unit = _steps_unit(max(steps, default=0.0))
    colours = [f"C{i % 10}" for i in range(len(data))]
    for columns, label, colour in zip(data, labels, colours):
        # Generation g's row is written when g ends: +1 puts it at "generations completed".
        done = columns["generation"] + 1
        for ax, x in ((ax_gen, done), (ax_steps, columns["env_steps"] / steps_scale),
                      (ax_time, columns["wall_s"] / scale)):
            ax.plot(x, columns["fitness_mean"], color=colour, lw=1.4, label=label)
            ax.plot(x, columns["fitness_max"], color=colour, lw=1.0, ls="--", alpha=0.8)
            evaluated = np.isfinite(columns["eval_mean"])
            if evaluated.any():
                xe, mean = x[evaluated], columns["eval_mean"][evaluated]
                std = np.nan_to_num(columns["eval_std"][evaluated])
                ax.plot(xe, mean, color=colour, marker="o", ms=4, lw=0.8, ls=":")
                ax.fill_between(xe, mean - std, mean + std, color=colour, alpha=0.15, lw=0)
    ax_gen.set(xlabel="generations completed", ylabel="fitness / return", title="against generations")
    ax_steps.set(xlabel=f"training env steps{f' ({steps_unit})' if steps_unit else ''}", title="against env steps")
    ax_time.set(xlabel=f"training wall time ({unit})", title="against wall time")
    for ax in (ax_gen, ax_steps, ax_time):
        ax.grid(alpha=0.3)
    style = [Line2D([], [], color="grey", lw=1.4), Line2D([], [], color="grey", lw=1.0, ls="--"),
             Line2D([], [], color="grey", marker="o", ms=4, lw=0.8, ls=":")]
    ax_gen.legend(fontsize=8, loc="best")
    ax_time.legend(style, ["population mean", "population max", "centre, held-out (+/- std)"], fontsize=8, loc="best")
    fig.suptitle(title or (f"{len(data)} runs" if len(data) > 1 else labels[0]))
    fig.subplots_adjust(left=0.045, right=0.985, top=0.88, bottom=0.11, wspace=0.16)
    try:  # draw once here: a title or label matplotlib cannot typeset is the caller's, not the disk's
        fig.canvas.draw()
    except ValueError as e:
        raise UsageError(f"a title or label cannot be drawn ({first_line(e, False)}); escape $ as \\$") from None
    # a reader never sees half an image; a failed write leaves no temporary file
    return write_atomically(out, lambda tmp: fig.savefig(tmp, format=fmt, dpi=FIGURE_DPI), "figure")
