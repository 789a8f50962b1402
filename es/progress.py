"""Progress display: a rich bar for terminals, one plain line per generation for logs.

Modes: "bar" (rich: generation, best and mean fitness, env steps/s, time left),
"lines" (alias "quiet": one line per generation on stderr, for log files),
"none" (silent), "auto" (bar on a terminal, lines otherwise). True = "auto", False = "none".
"""
from __future__ import annotations

import sys
import time

from .errors import UsageError

MODES = ("auto", "bar", "lines", "quiet", "none")


def resolve_mode(progress: str | bool) -> str:
    if progress is True:
        progress = "auto"
    elif progress is False:
        progress = "none"
    if progress not in MODES:
        raise UsageError(f"progress must be one of {MODES} (or True/False), got {progress!r}")
    if progress == "quiet":
        return "lines"
    if progress == "auto":
        return "bar" if sys.stderr.isatty() else "lines"
    return progress


def plain(value: float) -> str:
    """A fitness for people: 2 decimals from 1 up (876.43), 3 significant digits below (0.00123)."""
    if value != value or abs(value) >= 1e7:
        return f"{value:.3g}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


class ProgressReporter:
    """Context manager; call `update` once per finished generation.

    No time-left estimate from the run's average: early generations are short (episodes
    end early while agents are poor), so extrapolating from them promises a paper CarRacing
    run in minutes. What is shown is measured: time elapsed and the last generation's time,
    and the time left at that last generation's pace, labelled as such.
    """

    def __init__(self, progress: str | bool, total: int, start: int):
        self.mode = resolve_mode(progress)
        self.total, self.start = total, start
        self._t0 = time.perf_counter()
        self._last = self._t0
        self._bar = None

    def __enter__(self):
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("gen"), MofNCompleteColumn(), BarColumn(),
                TextColumn("best {task.fields[best]}  mean {task.fields[mean]}  eval {task.fields[eval]}"),
                TextColumn("{task.fields[sps]} steps/s"), TimeElapsedColumn(),
                TextColumn("{task.fields[pace]}"),
                console=Console(stderr=True), transient=False,
            )
            self._bar.__enter__()
            # Until a generation is done there is no pace to show; the wait is often Numba
            # compiling on a fresh install (CarRacing's raster: minutes), so say so.
            self._task = self._bar.add_task("evolve", total=self.total, completed=self.start,
                                            best="-", mean="-", eval="-", sps="-",
                                            pace="first generation; kernels compile on first use")
        return self

    def update(self, generation: int, best: float, mean: float, eval_mean: float | None, steps_per_s: float) -> None:
        """Report generation `generation` (0-based) as finished."""
        done = generation + 1
        now = time.perf_counter()
        gen_s, self._last = now - self._last, now
        ev = "-" if eval_mean is None else plain(eval_mean)
        pace = f"last gen {_hms(gen_s)}, {_hms(gen_s * (self.total - done))} left at that pace"
        if self.mode == "bar":
            self._bar.update(self._task, completed=done, best=plain(best), mean=plain(mean), eval=ev,
                             sps=f"{steps_per_s:.0f}", pace=pace)
        elif self.mode == "lines":
            print(f"gen {done}/{self.total} best {plain(best)} mean {plain(mean)} eval {ev} "
                  f"steps/s {steps_per_s:.0f} elapsed {_hms(now - self._t0)} {pace}", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
