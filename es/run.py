"""The run loop `evolve`, and the contract of its run folder.

One generation of `evolve` is

    ask -> evaluate (env seeds from `seeding`) -> tell -> [held-out evaluation of the new
    centre] -> record: best.npz (if better) -> a row of progress.csv -> checkpoint -> display

The pieces: `es.run_folder.RunFolder` owns the folder (its files, lock, refusals and resume);
`es.recorders` holds the recorders attached to the loop (`record(result)` per generation,
`close()` at the end); `make_run_dir`, `read_config`, `load_params` (from `es.run_folder`)
name and read folders from outside a run.

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
config.json; the seed, episodes, held-out episodes and the strategy's settings are
checked against it (one line naming the first difference). Raising `generations` on resume
continues a finished run; the rows then match a run started with the larger number except
for the held-out evaluation the shorter run did after its last generation. `eval_every`
may change on resume too (e.g. to evaluate more often once the run starts to drive): the
training columns still match, the eval columns follow the new period.

Stop rule (optional, `stop_score` / `stop_evals`): the run ends early, after the
generation whose held-out evaluation is the `stop_evals`-th in a row with a mean of at
least `stop_score`. The rule may change on resume (it ends the same search sooner or
later); evaluations recorded before the resume count, so a resumed run that already met
its rule runs no generation.

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
verified checkpoint records another seed, strategy or num_params (another run's file), or
when the folder was started by an older version whose noise this one does not reproduce (an
OpenAI-ES or PGPE run from before the noise table: its config.json has no strategy
noise_table_size). A checkpoint that verifies but holds the wrong content (centre of the wrong size, NaN, a bad
generation count) is skipped like a damaged one. A failed write (disk full, read-only)
stops the run with one line, UsageError before the first generation and StorageError
after, and leaves every saved file as it was: free space and resume.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import seeding
from .errors import EvaluationError, UsageError
from .population import CENTRE, SearchPoint
from .progress import resolve_mode
from .recorders import (
    BestParams,
    Checkpoints,
    GenerationResult,
    HeldOut,
    ProgressDisplay,
    ProgressRows,
)
from .run_folder import (
    COLUMNS,
    LOCK_NAME,
    RunFolder,
    load_params,
    make_run_dir,
    package_versions,
    read_config,
)

__all__ = ["COLUMNS", "LOCK_NAME", "RESERVED_CONFIG_KEYS", "RunResult", "evolve", "load_params", "make_run_dir",
           "package_versions", "read_config"]

RESERVED_CONFIG_KEYS = ("es_run", "versions")


@dataclass
class RunResult:
    """What `evolve` returns. centre: float32 (n,) final centre; generations: completed;
    stopped_early: the stop rule ended it;
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
    stopped_early: bool = False
    """True when the stop rule ended the run before `generations` of its settings."""


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
    stop_score: float | None = None,
    stop_evals: int = 3,
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
        stop_score, stop_evals: end the run once `stop_evals` held-out evaluations in a row
            have a mean >= `stop_score` (None: run all `generations`).
    """
    es_run = _settings(problem, strategy, evaluator, config, resume, progress, generations=generations,
                       episodes=episodes, seed=seed, eval_every=eval_every, eval_episodes=eval_episodes,
                       keep_checkpoints=keep_checkpoints, stop_score=stop_score, stop_evals=stop_evals)
    generations, episodes, seed, eval_every = (es_run[k] for k in ("generations", "episodes", "seed", "eval_every"))
    eval_seeds = [[s] for s in seeding.held_out_seeds(seed, es_run["eval_episodes"])]
    # Checked before the lock file is created: a folder that is not ours is never written.
    folder = RunFolder.open(run_dir) if resume else RunFolder.create(run_dir)
    with folder.lock():
        state, totals = folder.resume(es_run, strategy) if resume else (None, folder.start(dict(config or {}), es_run))
        if state is None:
            state = strategy.init(np.asarray(problem.initial_params(seeding.init_seed(seed))), seed)
        recorders = [BestParams(folder, seed, es_run["eval_episodes"]), ProgressRows(folder, strategy),
                     Checkpoints(folder, strategy, seed, es_run["keep_checkpoints"]),
                     ProgressDisplay(progress, generations, totals.generations)]
        result = None
        stop = es_run["stop"]
        streak = held_out_streak(folder.held_out_means(), stop) if resume else 0
        try:
            for g in range(totals.generations, generations):
                if stop is not None and streak >= stop["evals"]:
                    break
                t0 = time.perf_counter()
                population = strategy.ask(state)
                ev = evaluator.evaluate(population.shared, population.members, _train_seeds(seed, g, episodes, population))
                state = strategy.tell(state, population, ev.fitness)
                due = (eval_every and (g + 1) % eval_every == 0) or g == generations - 1
                held = _held_out(evaluator, strategy.centre(state), eval_seeds, g) if due else None
                seconds, steps = time.perf_counter() - t0, int(ev.steps.sum())
                totals = totals.after(g, steps, seconds, held.mean if held else None)
                result = GenerationResult(g, state, ev.fitness, steps, seconds,
                                          ev.bytes_sent + (held.bytes_sent if held else 0), held, totals)
                for recorder in recorders:
                    recorder.record(result)
                if held is not None and stop is not None:
                    streak = streak + 1 if held.mean >= stop["score"] else 0
        finally:
            for recorder in recorders:
                recorder.close()
    final = (result.held_out.mean, result.held_out.std) if result else (None, None)  # the last generation is evaluated
    stopped = stop is not None and streak >= stop["evals"] and totals.generations < generations
    return RunResult(folder.path, np.asarray(strategy.centre(state), np.float32), totals.generations, totals.env_steps,
                     totals.best_eval_mean, totals.best_generation, *final, stopped_early=stopped)


def held_out_streak(means: list[float], stop: dict | None) -> int:
    """How many of the last held-out means in a row reach the stop rule's score (``stop``:
    config.json's ``es_run["stop"]``, ``{"score", "evals"}``, or None for no rule: 0)."""
    count = 0
    for mean in reversed(means if stop is not None else []):
        if mean < stop["score"]:
            break
        count += 1
    return count


def _settings(problem: Any, strategy: Any, evaluator: Any, config: dict | None, resume: bool, progress: str | bool,
              **loop: Any) -> dict:
    """The checked loop settings as config.json's "es_run" (UsageError with one line if one is bad)."""
    es_run = {
        "generations": _positive("generations", loop["generations"]),
        "episodes": _positive("episodes", loop["episodes"]),
        "seed": seeding.check_seed(loop["seed"]),
        "eval_every": _positive("eval_every", loop["eval_every"], allow_zero=True),
        "eval_episodes": _positive("eval_episodes", loop["eval_episodes"]),
        "keep_checkpoints": _positive("keep_checkpoints", loop["keep_checkpoints"]),
        "stop": _stop_rule(loop["stop_score"], loop["stop_evals"]),
    }
    resolve_mode(progress)
    if int(problem.num_params) != strategy.num_params:
        raise UsageError(f"the problem has {problem.num_params} parameters but the strategy was built for {strategy.num_params}")
    clash = [k for k in RESERVED_CONFIG_KEYS if k in (config or {})]
    if clash and not resume:  # on resume config is ignored, so passing read_config()'s dict back is fine
        raise UsageError(f"config keys {clash} are reserved for evolve; rename them")
    return {**es_run, "strategy": strategy.config(), "evaluator": evaluator.describe(),
            "problem": {"class": f"{type(problem).__module__}.{type(problem).__qualname__}",
                        "num_params": int(problem.num_params)}}


def _positive(name: str, value: Any, allow_zero: bool = False) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise UsageError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}")
    return int(value)


def _stop_rule(score: Any, evals: Any) -> dict | None:
    """The stop rule as config.json's es_run records it: None, or {"score": float, "evals": int}."""
    evals = _positive("stop_evals", evals)
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, (int, float, np.integer, np.floating)) \
            or not np.isfinite(score):
        raise UsageError(f"stop_score must be a finite number or None, got {score!r}")
    return {"score": float(score), "evals": evals}


def _train_seeds(seed: int, generation: int, episodes: int, population: Any) -> list[list[int]]:
    """Each member's training env seeds: one list per group, shared by the group's members."""
    by_group = {grp: seeding.train_episode_seeds(seed, generation, grp, episodes) for grp in set(population.groups)}
    return [by_group[grp] for grp in population.groups]


def _held_out(evaluator: Any, centre: np.ndarray, eval_seeds: list[list[int]], generation: int) -> HeldOut:
    """The centre's returns on the fixed held-out seeds, one episode per seed."""
    centre = np.asarray(centre, np.float32)
    held = evaluator.evaluate(SearchPoint(centre, np.float32(0)), [CENTRE] * len(eval_seeds), eval_seeds)
    returns = np.array([r for rs in held.returns for r in rs], np.float64)
    if not np.all(np.isfinite(returns)):
        raise EvaluationError(f"the held-out evaluation after generation {generation} returned non-finite returns")
    return HeldOut(centre, float(returns.mean()), float(returns.std()), held.bytes_sent)
