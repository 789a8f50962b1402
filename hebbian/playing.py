"""Playing an evolved agent's episodes one by one, with a hook after every step.

    run = hebbian.evaluate.load_run("runs/CarRacing-v3/20261128T101500Z-0", "best")
    problem = hebbian.evaluate.make_problem(run)
    results = play(problem, run.params, hebbian.evaluate.run_test_seeds(run, 3),
                   on_episode=lambda i, r: print(i, r.ret))

Episodes are played with the same env options, seeds and code path (`run_episode`) as the
standard evaluation, so a played episode's return is the one eval.json reports for it.
Playing knows nothing of frames or weights: what is drawn (`hebbian.frames`) or recorded
(`hebbian.weight_trace`) hangs on the `on_step` hook, and the env may be a rendering copy
of the problem's (`env=`), which plays the same trajectory.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hebbian.agent import AgentProblem, run_episode

StepHook = Callable[[int, Any, Any, float], None]
"""on_step(episode, obs, action, reward), after every env step; episode counts from 0."""


@dataclass
class EpisodeResult:
    """One played episode: its seed (the episode seed of `run_episode`), return and steps."""

    seed: int
    ret: float
    steps: int


def play(problem: AgentProblem, params: np.ndarray, seeds: Sequence[int], *, env=None,
         max_steps: int | None = None, on_step: StepHook | None = None,
         on_episode: Callable[[int, EpisodeResult], None] | None = None) -> list[EpisodeResult]:
    """Play one episode per seed with `params`; returns their results in seed order.

    env: the env to play in (default: the problem's first, the one the evaluation uses);
    max_steps: cut each episode after this many steps; on_step: see `StepHook`;
    on_episode(i, result) after episode i. An exception from a hook stops playing and
    propagates (the finished episodes were already told to `on_episode`).
    """
    policy = problem.policy
    policy.set_params(np.asarray(params, np.float32))
    env = env if env is not None else problem.envs[0]
    results: list[EpisodeResult] = []
    for i, seed in enumerate(seeds):
        hook = None if on_step is None else (lambda obs, action, reward, i=i: on_step(i, obs, action, reward))
        ret, steps = run_episode(env, policy, seed, max_steps=max_steps, on_step=hook)
        results.append(EpisodeResult(int(seed), float(ret), int(steps)))
        if on_episode is not None:
            on_episode(i, results[-1])
    return results


def describe_returns(returns: Sequence[float]) -> str:
    """"mean +/- std" of episode returns (population std), e.g. "212.40 +/- 31.05"."""
    values = np.asarray(returns, np.float64)
    return f"{values.mean():.2f} +/- {values.std():.2f}"
