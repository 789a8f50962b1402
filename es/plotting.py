"""Fitness curves of one or more runs, read from their progress.csv (see `es.run.COLUMNS`).

    plot_runs(["runs/CarRacing-v3/a", "runs/CarRacing-v3/b"], labels=["ABCD_lr", "static"])

Two panels, the same curves against generations and against training wall time: for each
run (one colour) the population mean (solid), the population max (dashed) and the held-out
evaluation of the centre (markers) with its per-episode std as a band. Generic: it knows
run folders and progress.csv, nothing about what was evolved.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import UsageError

FIGURE_SIZE_IN = (13.0, 5.0)
FIGURE_DPI = 100
"""Figures are FIGURE_SIZE_IN x FIGURE_DPI = 1300 x 500 pixels (PNG)."""
FORMATS = ("png", "svg", "pdf")
NEEDED = ("generation", "wall_s", "fitness_mean", "fitness_max", "eval_mean", "eval_std")


def read_progress(run_dir: str | Path) -> dict[str, np.ndarray]:
    """progress.csv as float64 (G,) columns keyed by its header (`es.run.COLUMNS`); empty cells are NaN.

    A torn last line (a run killed mid-write) is skipped. Raises UsageError (one line) when
    the folder or the file is missing or holds no generation yet.
    """
    run_dir = Path(run_dir)
    path = run_dir / "progress.csv"
    if not run_dir.is_dir():
        raise UsageError(f"run folder {run_dir} does not exist")
    if not path.is_file():
        raise UsageError(f"{run_dir} has no progress.csv; give a run folder written by evolve")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    missing = [c for c in NEEDED if not rows or c not in rows[0]]
    if missing:
        raise UsageError(f"{path} has no column(s) {', '.join(missing)} in its header; it was not written by evolve")
    header = rows[0]
    body = [r for r in rows[1:] if len(r) == len(header)]
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
    """
    if not run_dirs:
        raise UsageError("give at least one run folder")
    if labels is not None and len(labels) != len(run_dirs):
        raise UsageError(f"{len(labels)} labels for {len(run_dirs)} runs; give one label per run")
    if fmt is None:
        suffix = Path(out).suffix.lstrip(".").lower() if out is not None else ""
        fmt = suffix or "png"
    if fmt not in FORMATS:
        raise UsageError(f"unknown image format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out) if out is not None else default_output(run_dirs, fmt)
    if out.suffix.lstrip(".").lower() != fmt:
        raise UsageError(f"output {out} does not end in .{fmt}")
    data = [read_progress(d) for d in run_dirs]  # read all first: a bad folder fails before drawing
    labels = list(labels) if labels is not None else [default_label(d) for d in run_dirs]

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=FIGURE_SIZE_IN, dpi=FIGURE_DPI)
    FigureCanvasAgg(fig)
    ax_gen, ax_time = fig.subplots(1, 2)
    scale, unit = _time_unit(max(float(np.nanmax(c["wall_s"])) for c in data))
    colours = [f"C{i % 10}" for i in range(len(data))]
    for columns, label, colour in zip(data, labels, colours):
        # Generation g's row is written when g ends: +1 puts it at "generations completed".
        done = columns["generation"] + 1
        for ax, x in ((ax_gen, done), (ax_time, columns["wall_s"] / scale)):
            ax.plot(x, columns["fitness_mean"], color=colour, lw=1.4, label=label)
            ax.plot(x, columns["fitness_max"], color=colour, lw=1.0, ls="--", alpha=0.8)
            evaluated = np.isfinite(columns["eval_mean"])
            if evaluated.any():
                xe, mean = x[evaluated], columns["eval_mean"][evaluated]
                std = np.nan_to_num(columns["eval_std"][evaluated])
                ax.plot(xe, mean, color=colour, marker="o", ms=4, lw=0.8, ls=":")
                ax.fill_between(xe, mean - std, mean + std, color=colour, alpha=0.15, lw=0)
    ax_gen.set(xlabel="generations completed", ylabel="fitness / return", title="against generations")
    ax_time.set(xlabel=f"training wall time ({unit})", title="against wall time")
    for ax in (ax_gen, ax_time):
        ax.grid(alpha=0.3)
    style = [Line2D([], [], color="grey", lw=1.4), Line2D([], [], color="grey", lw=1.0, ls="--"),
             Line2D([], [], color="grey", marker="o", ms=4, lw=0.8, ls=":")]
    ax_gen.legend(fontsize=8, loc="best")
    ax_time.legend(style, ["population mean", "population max", "centre, held-out (+/- std)"], fontsize=8, loc="best")
    fig.suptitle(title or (f"{len(data)} runs" if len(data) > 1 else labels[0]))
    fig.subplots_adjust(left=0.06, right=0.98, top=0.88, bottom=0.11, wspace=0.18)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    fig.savefig(tmp, format=fmt, dpi=FIGURE_DPI)
    os.replace(tmp, out)  # a reader never sees half an image
    return out
