"""What `evolve` does with a finished generation: recorders attached to the loop.

Each recorder has the same two calls:

    record(result: GenerationResult)   after every generation, in the order attached
    close()                            once, when the loop ends (also on an error)

The default set, in the order `evolve` attaches them (the order is part of the contract: a
checkpoint never runs ahead of its progress row):

    BestParams        best.npz/.json when the held-out mean beats the best so far
    ProgressRows      one progress.csv row (columns `es.run_folder.COLUMNS`)
    Checkpoints       checkpoints/gen-<completed>.npz/.json, then prunes to the newest `keep`
    ProgressDisplay   the bar or log line of `es.progress.ProgressReporter`

Writes go through the `RunFolder`, so a failed one stops the run with one StorageError line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import checkpoint as ckpt
from .progress import ProgressReporter
from .run_folder import RunFolder, Totals


@dataclass(frozen=True)
class HeldOut:
    """The held-out evaluation of the updated centre: mean / std of its per-episode returns."""

    centre: np.ndarray  # float32 (n,), the centre evaluated
    mean: float
    std: float
    bytes_sent: int


@dataclass(frozen=True)
class GenerationResult:
    """One finished generation, as the recorders see it."""

    generation: int          # 0-based index of the generation just finished
    state: Any               # the strategy state after tell
    fitness: np.ndarray      # raw fitness of the population
    steps: int               # training env steps of this generation
    seconds: float           # its wall-clock seconds (training and held-out evaluation)
    bytes_sent: int          # bytes shipped to workers (training and held-out)
    held_out: HeldOut | None  # None when no held-out evaluation was due
    totals: Totals           # the run after this generation (env steps, wall_s, best)

    @property
    def improved(self) -> bool:
        """Whether this generation's held-out mean is the new best."""
        return self.held_out is not None and self.totals.best_generation == self.generation


class Recorder:
    """Base of the recorders: `record` each finished generation, `close` at the end."""

    def record(self, result: GenerationResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class BestParams(Recorder):
    """best.npz ("params") / best.json (generation, eval_mean, eval_std, eval_episodes, seed)
    with the centre of the best held-out mean so far."""

    def __init__(self, folder: RunFolder, seed: int, eval_episodes: int):
        self.folder, self.seed, self.eval_episodes = folder, seed, eval_episodes

    def record(self, result: GenerationResult) -> None:
        if result.improved:
            held = result.held_out
            self.folder.save_best(held.centre, {"generation": result.generation, "eval_mean": held.mean,
                                                "eval_std": held.std, "eval_episodes": self.eval_episodes,
                                                "seed": self.seed})


class ProgressRows(Recorder):
    """One fsynced progress.csv row per generation (see `es.run` for the columns)."""

    def __init__(self, folder: RunFolder, strategy: Any):
        self.folder, self.strategy = folder, strategy

    def record(self, result: GenerationResult) -> None:
        logged, f, held, totals = self.strategy.log_values(result.state), result.fitness, result.held_out, result.totals
        self.folder.append_progress([
            result.generation, round(totals.wall_s, 3), totals.env_steps,
            float(f.mean()), float(f.max()), float(f.min()), float(f.std()),
            float(logged["sigma"]), float(logged["lr"]),
            held.mean if held else None, held.std if held else None, result.bytes_sent])


class Checkpoints(Recorder):
    """checkpoints/gen-<completed>.npz/.json after every generation; the newest `keep` are kept."""

    def __init__(self, folder: RunFolder, strategy: Any, seed: int, keep: int):
        self.folder, self.strategy, self.seed, self.keep = folder, strategy, seed, keep

    def record(self, result: GenerationResult) -> None:
        arrays, state_meta = ckpt.strategy_arrays(self.strategy, result.state)
        totals = result.totals
        self.folder.save_checkpoint(arrays, {
            "generation": totals.generations, "env_steps": totals.env_steps, "wall_s": totals.wall_s,
            "seed": self.seed, "strategy": self.strategy.name, "num_params": self.strategy.num_params,
            "best_eval_mean": totals.best_eval_mean, "best_generation": totals.best_generation,
            "state": state_meta, "state_centre_is_centre": "state.centre" not in arrays,
        }, self.keep)


class ProgressDisplay(Recorder):
    """The progress bar or log line (`ProgressReporter`), started when attached."""

    def __init__(self, progress: str | bool, total: int, start: int):
        self.reporter = ProgressReporter(progress, total, start).__enter__()

    def record(self, result: GenerationResult) -> None:
        f = result.fitness
        eval_mean = result.held_out.mean if result.held_out else None
        self.reporter.update(result.generation, float(f.max()), float(f.mean()), eval_mean,
                             result.steps / max(result.seconds, 1e-9))

    def close(self) -> None:
        self.reporter.__exit__(None, None, None)
