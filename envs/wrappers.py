"""Task-independent wrappers: the paper's early stop on a run of non-positive rewards.

Each wrapper does one thing and records its constructor arguments
(:class:`gymnasium.utils.RecordConstructorArgs`), so ``env.spec.make()`` rebuilds the
same stack.
"""

from __future__ import annotations

from typing import Any

import gymnasium
from gymnasium.utils import RecordConstructorArgs


class StopAfterNegativeRun(gymnasium.Wrapper, RecordConstructorArgs):
    """Truncate the episode once the rewards have been negative for more than ``limit`` steps in a row.

    This is the reference code's early stop (Najarro & Risi 2020): with the step index
    ``t`` counted from 0 after ``reset``, steps with ``t > start_after`` update
    ``run = run + 1 if reward < 0 else 0`` and the episode ends as soon as ``run > limit``.
    CarRacing uses ``limit=20, start_after=-1`` (counted from the first step, so the 21st
    negative reward in a row ends it); the quadruped uses ``limit=30, start_after=200`` on
    its progress reward.

    The cut is reported as ``truncated=True`` (the state is not terminal, the episode was
    only cut short to save compute) with ``info["early_stop"] = "negative_run"``. Rewards
    and observations pass through unchanged.
    """

    def __init__(self, env: gymnasium.Env, limit: int, start_after: int = -1):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a non-negative int (steps), got {limit!r}; pass None to the task option to turn the early stop off")
        if isinstance(start_after, bool) or not isinstance(start_after, int) or start_after < -1:
            raise ValueError(f"start_after must be an int >= -1 (a step index), got {start_after!r}")
        RecordConstructorArgs.__init__(self, limit=limit, start_after=start_after)
        gymnasium.Wrapper.__init__(self, env)
        self.limit = limit
        self.start_after = start_after
        self._t = 0
        self._run = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._t = 0
        self._run = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._t > self.start_after:
            self._run = self._run + 1 if float(reward) < 0.0 else 0
            if self._run > self.limit and not (terminated or truncated):
                truncated = True
                info = {**info, "early_stop": "negative_run"}
        self._t += 1
        return obs, reward, terminated, truncated, info

