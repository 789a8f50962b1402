"""Environments for Hebbian meta-learning: ``envs.make(env_id, **options)``.

Three tasks (:func:`task_for`, :mod:`envs.tasks`), each with its options and documented defaults:

``car_racing`` (``CarRacing-v3``; ``CarRacing-v0/v1/v2`` are aliases)
    Pixels as float32 ``(3, 84, 84)`` in [0, 1] and the paper's early stop for training.
    Options: ``frame_size=84``, ``neg_reward_limit=20`` (``None`` for evaluation),
    ``max_episode_steps=1000``, ``continuous=True``, ``render_mode=None``,
    ``lap_complete_percent=0.95``, ``domain_randomize=False``,
    ``exact_env=False`` (True: Gymnasium's own CarRacing instead of the identical, faster
    :class:`envs.fast_car_racing.FastCarRacing`; watching and evaluation use it).
    See :mod:`envs.car_racing`.

``quadruped`` (``AntBulletEnv-v0`` and the registered ``HebbianAnt-<morphology>-v0``)
    pybullet's Ant with the paper's fitness (forward progress after a 40-step burn-in,
    early stop). Options: ``morphology="healthy"`` (one of :data:`MORPHOLOGIES`),
    ``burn_in=40``, ``no_progress_after=200``, ``no_progress_patience=30``,
    ``reward="progress"``, ``max_episode_steps=1000`` (counts the burn-in, as in the
    reference: the agent gets 960 steps), ``render_mode=None``.
    See :mod:`envs.quadruped`; :func:`make_many` builds one env per morphology.

``generic`` (any other registered Gymnasium id: LunarLander-v3, BipedalWalker-v3,
Pendulum-v1, MuJoCo ids when mujoco is installed...)
    Built by ``gymnasium.make`` as it is; options are ``max_episode_steps``,
    ``render_mode`` and the env's own constructor arguments. ``LunarLander-v2`` and
    ``BipedalWalker-v2`` are aliases of ``-v3``.

An alias emits one :class:`EnvironmentAliasWarning` (a ``UserWarning``) naming the version
that runs; an unknown id raises :class:`UnknownEnvironmentError` listing close matches.
This package imports neither ``hebbian`` nor ``es``.
"""

from __future__ import annotations

import numba_cache

numba_cache.track(__path__[0])  # before any module here compiles a Numba function

from collections.abc import Sequence
from typing import Any

import gymnasium

from envs.ids import (
    QUADRUPED_BASE_ID,
    QUADRUPED_IDS,
    EnvironmentAliasWarning,
    UnknownEnvironmentError,
    canonical_id,
    quadruped_id,
)
from envs.morphologies import MORPHOLOGIES, check_morphology
from envs.tasks import CAR_RACING, GENERIC, QUADRUPED, TASKS, Task, task_for

__all__ = [
    "CAR_RACING",
    "GENERIC",
    "QUADRUPED",
    "TASKS",
    "Task",
    "MORPHOLOGIES",
    "QUADRUPED_IDS",
    "EnvironmentAliasWarning",
    "UnknownEnvironmentError",
    "canonical_id",
    "make",
    "make_many",
    "quadruped_id",
    "task_for",
]

# The quadruped ids, one per morphology; string entry points, so nothing heavy is imported
# until one is built. Ray workers register them too, by importing this package. The time
# limit counts agent steps (the burn-in runs inside reset): the reference's 1000 env steps
# less the default 40-step burn-in (envs.quadruped.DEFAULTS; a test keeps them in step).
_QUADRUPED_AGENT_STEPS = 1000 - 40
for _morphology in MORPHOLOGIES:
    if quadruped_id(_morphology) not in gymnasium.registry:
        gymnasium.register(
            id=quadruped_id(_morphology),
            entry_point="envs.quadruped:make_registered",
            kwargs={"morphology": _morphology},
            max_episode_steps=_QUADRUPED_AGENT_STEPS,
        )

# The fast CarRacing (identical frames, see envs.fast_car_racing); make() uses it for the
# CarRacing names unless exact_env=True.
if "FastCarRacing-v3" not in gymnasium.registry:
    gymnasium.register(id="FastCarRacing-v3", entry_point="envs.fast_car_racing:FastCarRacing",
                       max_episode_steps=1000, reward_threshold=900)


def make(env_id: str, **options: Any) -> gymnasium.Env:
    """Build ``env_id`` with the task family's wrappers and ``options`` (see the module docstring).

    Returns a ``gymnasium.Env``: for CarRacing, float32 ``(3, frame_size, frame_size)``
    frames in [0, 1]; for the quadruped, float32 (28,) states and progress rewards (m/s
    towards +x); otherwise the Gymnasium env unchanged. Raises
    :class:`UnknownEnvironmentError` for an unknown id and ``ValueError`` for an option
    the task does not have.
    """
    resolved = canonical_id(env_id, warn=True)
    return task_for(resolved).make(resolved, **options)


def make_many(env_id: str, morphologies: Sequence[str], **options: Any) -> list[gymnasium.Env]:
    """One quadruped env per name in ``morphologies``, all with the same ``options``.

    For training on several bodies at once: the fitness of an individual is the mean of its
    returns over the returned list (``make_many("AntBulletEnv-v0", ["healthy",
    "damaged-right"])``); keep a morphology out of the list to evaluate on it later with
    ``make(env_id, morphology=...)``. Returns ``len(morphologies)`` envs in that order.
    """
    if not task_for(env_id).morphologies:
        raise ValueError(f"make_many builds one env per morphology, and {env_id} has none; use {QUADRUPED_BASE_ID}")
    if isinstance(morphologies, str) or not morphologies:
        raise ValueError(f"morphologies must be a non-empty list of names from {', '.join(MORPHOLOGIES)}, got {morphologies!r}")
    if "morphology" in options:
        raise ValueError("pass the bodies as morphologies=[...], not morphology=...")
    for name in morphologies:
        check_morphology(name)
    return [make(env_id, morphology=name, **options) for name in morphologies]
