"""The paper's quadruped: pybullet's Ant (``AntBulletEnv-v0`` of pybullet-envs-gymnasium) in several morphologies.

Fitness as in Najarro & Risi 2020 (reference ``fitness_functions.py``), each step a wrapper:

1. :class:`MorphologyAntBulletEnv`: ``AntBulletEnv`` loading ``envs/assets/ant_<morphology>.xml``.
2. :class:`ProgressReward`: the reward is the env's *progress* term only (``rewards[1]``):
   the decrease of the distance to the walk target at x = 1000 m, divided by the control
   step dt = 0.0165 s. Per step it is the speed towards +x in m/s; the episode return is the
   distance travelled towards +x divided by dt (multiply by 0.0165 for metres). The
   alive bonus and the electricity / joint-limit costs are dropped, as in the paper.
3. :class:`ZeroActionBurnIn`: ``reset`` first runs ``burn_in`` (40) steps with zero
   torques, so the Ant, dropped from 0.75 m, has landed before the agent acts. Progress
   made while falling is not counted, but these steps do count towards the time limit
   (step 6), as in the reference.
4. :class:`TerminationGrace`: the env ends an episode when the torso is below 0.26 m
   ("fallen"), which is already the case for the Ant at rest on its belly after the
   burn-in; the reference code ignored that until step ``no_progress_after`` (200) and so
   do we (``info["fallen"]`` still reports it). ``no_progress_after=-1`` turns the grace off.
5. :class:`~envs.wrappers.StopAfterNegativeRun`: after step ``no_progress_after`` (200),
   the episode is truncated once more than ``no_progress_patience`` (30) steps in a row
   made negative progress (the reference ``if t > 200: ... if neg_count > 30: break``).
6. ``TimeLimit``: ``max_episode_steps`` (1000) counts env steps *including* the burn-in,
   as the reference's ``AntBulletEnv-v0`` did (its 1000-step TimeLimit also counted the 40
   zero-action steps): the agent gets ``max_episode_steps - burn_in`` steps (960 by
   default), the number the TimeLimit wrapper (and ``env.spec.max_episode_steps``) holds.
   ``max_episode_steps <= burn_in`` is an error. The registered ``HebbianAnt-<morphology>-v0``
   ids carry ``max_episode_steps=960`` (1000 less the default burn-in), so a plain
   ``gymnasium.make(id)`` gives the same limit; a ``max_episode_steps`` (or a ``burn_in``)
   passed to ``gymnasium.make`` itself leaves that rule: Gymnasium's own argument counts
   agent steps only, so use ``envs.make`` to change either.

Observation: float32 (28,) (the pybullet Ant's state); action: float32 (8,) joint torques
in [-1, 1] (values outside are clipped by the env).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium.utils import RecordConstructorArgs
from pybullet_envs_gymnasium.gym_locomotion_envs import AntBulletEnv, WalkerBaseBulletEnv
from pybullet_envs_gymnasium.robot_locomotors import Ant

from envs.ids import QUADRUPED_BASE_ID, QUADRUPED_IDS, quadruped_id
from envs.morphologies import asset_path, check_morphology
from envs.wrappers import StopAfterNegativeRun

CONTROL_DT = 0.0165
"""Seconds of simulated time per env step (4 physics substeps of 0.0165/4 s)."""

DEFAULTS: dict[str, Any] = {
    "morphology": "healthy",
    "burn_in": 40,
    "no_progress_after": 200,
    "no_progress_patience": 30,
    "reward": "progress",
    "max_episode_steps": 1000,
    "render_mode": None,
}
"""Options of the quadruped in ``envs.make`` with their defaults (see the module docstring)."""


class MorphologyAntBulletEnv(AntBulletEnv):
    """pybullet's Ant with the body from ``envs/assets/ant_<morphology>.xml``.

    Same action space, reward and termination as ``AntBulletEnv-v0`` and the same
    observations, declared with their true bounds [-5, 5]; ``info`` additionally holds
    the reward terms of the step: ``progress`` (m/s towards +x), ``alive`` (+1 / -1),
    ``electricity_cost``, ``joints_at_limit_cost``, ``feet_collision_cost``, and
    ``fallen`` (the torso is below 0.26 m, which is what ends the episode).
    """

    def __init__(self, morphology: str = "healthy", render_mode: str | None = None):
        check_morphology(morphology)
        self.morphology = morphology
        robot = Ant()
        # MJCFBasedRobot loads os.path.join(<pybullet_data>/mjcf, model_xml); an absolute
        # path wins that join, so the robot reads our asset instead of pybullet's ant.xml.
        robot.model_xml = str(asset_path(morphology))
        self.robot = robot
        WalkerBaseBulletEnv.__init__(self, robot, render_mode=render_mode)
        # The robot declares (-inf, inf) but clips every state to [-5, 5]; say so.
        self.observation_space = gymnasium.spaces.Box(-5.0, 5.0, robot.observation_space.shape, np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if self.stateId < 0:
            # The first reset loads the robot and saves the simulator state; later resets
            # restore that state. The two paths differ in the last bits (about 1e-7), which
            # chaotic locomotion amplifies, so a fresh env would not replay an episode of a
            # reused one. Loading once here makes every episode start through the restore
            # path: the same seed gives the same episode in a new or a reused env.
            super().reset(seed=seed)
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        alive, progress, electricity, joints_at_limit, feet_collision = self.rewards
        info = {
            **info,
            "progress": float(progress),
            "alive": float(alive),
            "electricity_cost": float(electricity),
            "joints_at_limit_cost": float(joints_at_limit),
            "feet_collision_cost": float(feet_collision),
            "fallen": bool(alive < 0),
        }
        return obs, reward, terminated, truncated, info


class ProgressReward(gymnasium.Wrapper, RecordConstructorArgs):
    """Reward = ``info["progress"]`` (m/s towards +x); the env's full reward moves to ``info["env_reward"]``."""

    def __init__(self, env: gymnasium.Env):
        RecordConstructorArgs.__init__(self)
        gymnasium.Wrapper.__init__(self, env)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, info["progress"], terminated, truncated, {**info, "env_reward": float(reward)}


def _check_burn_in(steps: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"burn_in must be a non-negative int (steps), got {steps!r}")


class ZeroActionBurnIn(gymnasium.Wrapper, RecordConstructorArgs):
    """On ``reset``, run ``steps`` env steps with an all-zero action and return the last observation.

    Rewards and terminations of these steps are discarded (the reference code did the
    same); ``info["burn_in_steps"]`` says how many were run.
    """

    def __init__(self, env: gymnasium.Env, steps: int = 40):
        _check_burn_in(steps)
        RecordConstructorArgs.__init__(self, steps=steps)
        gymnasium.Wrapper.__init__(self, env)
        self.steps = steps
        self._zero = np.zeros(env.action_space.shape, dtype=env.action_space.dtype)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        for _ in range(self.steps):
            obs, _, _, _, _ = self.env.step(self._zero)
        return obs, {**info, "burn_in_steps": self.steps}


class TerminationGrace(gymnasium.Wrapper, RecordConstructorArgs):
    """Ignore ``terminated`` for the steps with index ``t <= until`` (t counted from 0 after reset).

    An ignored termination is reported as ``info["termination_ignored"] = True``; from
    step ``until + 1`` on, the env's termination passes through.
    """

    def __init__(self, env: gymnasium.Env, until: int = 200):
        if isinstance(until, bool) or not isinstance(until, int) or until < -1:
            raise ValueError(f"no_progress_after must be an int >= -1 (a step index), got {until!r}")
        RecordConstructorArgs.__init__(self, until=until)
        gymnasium.Wrapper.__init__(self, env)
        self.until = until
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._t = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated and self._t <= self.until:
            terminated = False
            info = {**info, "termination_ignored": True}
        self._t += 1
        return obs, reward, terminated, truncated, info


def make_registered(
    morphology: str = "healthy",
    render_mode: str | None = None,
    burn_in: int = 40,
    no_progress_after: int = 200,
    no_progress_patience: int | None = 30,
    reward: str = "progress",
) -> gymnasium.Env:
    """Entry point of the ``HebbianAnt-<morphology>-v0`` ids: steps 1-5 of the module docstring.

    ``gymnasium.make`` adds the time limit (step 6: the ids' 960 agent steps are the
    reference's 1000 less the default 40-step burn-in). ``reward="env"`` keeps the env's
    full reward (alive bonus + progress + costs); ``no_progress_patience=None`` turns the
    no-progress stop off; ``no_progress_after=-1`` lets falls end the episode at once, as
    in ``AntBulletEnv-v0`` (note that the Ant at rest already counts as fallen: its torso
    lies on the ground until the legs push it up).
    """
    if reward not in ("progress", "env"):
        raise ValueError(f"reward must be 'progress' (the paper's distance) or 'env' (AntBulletEnv's full reward), got {reward!r}")
    env: gymnasium.Env = MorphologyAntBulletEnv(morphology, render_mode=render_mode)
    if reward == "progress":
        env = ProgressReward(env)
    env = ZeroActionBurnIn(env, steps=burn_in)
    env = TerminationGrace(env, until=no_progress_after)
    if no_progress_patience is not None:
        env = StopAfterNegativeRun(env, limit=no_progress_patience, start_after=no_progress_after)
    return env


def make_quadruped(env_id: str = QUADRUPED_BASE_ID, **options: Any) -> gymnasium.Env:
    """The paper's quadruped task; ``env_id`` is ``AntBulletEnv-v0`` or a ``HebbianAnt-<morphology>-v0`` id.

    Options and defaults are in :data:`DEFAULTS`. With a ``HebbianAnt-*`` id the morphology
    is the id's; passing a different ``morphology`` is an error. ``max_episode_steps``
    counts the burn-in steps (module docstring, step 6).
    """
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        hint = " (use envs.make_many for several morphologies)" if "morphologies" in unknown else ""
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for {env_id}{hint}; the quadruped accepts {', '.join(DEFAULTS)}")
    opts = {**DEFAULTS, **options}
    if env_id in QUADRUPED_IDS:
        if "morphology" in options and options["morphology"] != QUADRUPED_IDS[env_id]:
            raise ValueError(f"{env_id} has morphology {QUADRUPED_IDS[env_id]!r}, not {options['morphology']!r}; use {QUADRUPED_BASE_ID} with morphology=... instead")
        opts["morphology"] = QUADRUPED_IDS[env_id]
    check_morphology(opts["morphology"])
    steps, burn_in = opts["max_episode_steps"], opts["burn_in"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"max_episode_steps must be a positive int, got {steps!r}")
    _check_burn_in(burn_in)
    if steps <= burn_in:
        raise ValueError(f"max_episode_steps={steps} counts the burn_in={burn_in} steps too (as in the reference), so it must exceed burn_in")
    return gymnasium.make(
        quadruped_id(opts["morphology"]),
        max_episode_steps=steps - burn_in,  # agent steps: the reference's limit less the burn-in
        render_mode=opts["render_mode"],
        burn_in=opts["burn_in"],
        no_progress_after=opts["no_progress_after"],
        no_progress_patience=opts["no_progress_patience"],
        reward=opts["reward"],
    )

