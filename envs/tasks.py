"""Tasks: what each family of environments is, defined once.

A `Task` says which env ids it covers, how to build its training env and its evaluation
env (the standard protocol's options), and what its observations and actions are, so that
no other module compares family names: ask `task_for(env_id)` and read its attributes.

    CAR_RACING  CarRacing-v3 (aliases v0-v2): frames, the paper's early stop for training;
                the protocol turns the stop off and plays Gymnasium's own CarRacing.
    QUADRUPED   AntBulletEnv-v0 and HebbianAnt-<morphology>-v0: bodies (morphologies);
                the protocol turns the no-progress stop off (falls still end an episode).
    GENERIC     any other registered id, built by gymnasium.make as it is.

The agent's side of a task (its action head, its presets) lives in `hebbian`, keyed by
`Task.name`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import inspect

import gymnasium
from gymnasium.envs.registration import load_env_creator, parse_env_id

from envs.ids import QUADRUPED_BASE_ID, QUADRUPED_IDS, canonical_id


@dataclass(frozen=True)
class Task:
    """A family of environments.

    Attributes:
        name: "car_racing", "quadruped" or "generic" (a key, for presets and logs).
        covers: whether a registered id belongs to the family.
        build: (registered id, **options) -> the training env.
        evaluation_options: env options that turn a training configuration into the
            standard evaluation protocol's (full episodes, the reference env).
        pixels: observations are frames (an encoder applies).
        morphologies: the env has bodies to choose (`morphology=`, `envs.make_many`).
        car_controls: actions are CarRacing's (steer, gas, brake), squashed by the
            agent's CarRacing head from linear outputs.
    """

    name: str
    covers: Callable[[str], bool]
    build: Callable[..., gymnasium.Env]
    evaluation_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    pixels: bool = False
    morphologies: bool = False
    car_controls: bool = False

    def make(self, env_id: str, **options: Any) -> gymnasium.Env:
        """The training env of `env_id` (already resolved by `canonical_id`) with `options`."""
        return self.build(env_id, **options)

    def make_evaluation(self, env_id: str, **options: Any) -> gymnasium.Env:
        """The env of the standard protocol: `options` with the protocol's on top."""
        return self.build(env_id, **{**options, **self.evaluation_options})


def _build_car_racing(env_id: str, **options: Any) -> gymnasium.Env:
    from envs.car_racing import make_car_racing  # pygame and Box2D load only when a CarRacing is built

    return make_car_racing(env_id, **options)


def _build_quadruped(env_id: str, **options: Any) -> gymnasium.Env:
    from envs.quadruped import make_quadruped  # pybullet loads only when a quadruped is built

    return make_quadruped(env_id, **options)


def _build_generic(env_id: str, **options: Any) -> gymnasium.Env:
    _check_generic_options(env_id, options)
    return gymnasium.make(env_id, **options)


_GENERIC_OPTIONS = ("max_episode_steps", "render_mode")


def _check_generic_options(env_id: str, options: dict[str, Any]) -> None:
    # gymnasium.make would fail deep inside the env constructor with a TypeError; check the
    # names against the constructor's signature first to give a one-line answer.
    entry_point = gymnasium.spec(env_id).entry_point
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    try:
        parameters = inspect.signature(creator).parameters
    except (TypeError, ValueError):
        return  # no introspectable signature: let gymnasium.make decide
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [*_GENERIC_OPTIONS, *(n for n, p in parameters.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for {env_id}; it accepts {', '.join(dict.fromkeys(accepted))}")



CAR_RACING = Task(
    "car_racing", covers=lambda env_id: parse_env_id(env_id)[1] == "CarRacing", build=_build_car_racing,
    # Reported scores come from Gymnasium's own CarRacing, the reference environment.
    evaluation_options=MappingProxyType({"neg_reward_limit": None, "exact_env": True}),
    pixels=True, car_controls=True,
)
QUADRUPED = Task(
    "quadruped", covers=lambda env_id: env_id == QUADRUPED_BASE_ID or env_id in QUADRUPED_IDS,
    build=_build_quadruped, evaluation_options=MappingProxyType({"no_progress_patience": None}), morphologies=True,
)
GENERIC = Task("generic", covers=lambda env_id: True, build=_build_generic)
TASKS: tuple[Task, ...] = (CAR_RACING, QUADRUPED, GENERIC)


def task_for(env_id: str) -> Task:
    """The Task of `env_id` (aliases accepted); UnknownEnvironmentError for an unknown id."""
    resolved = canonical_id(env_id)
    return next(task for task in TASKS if task.covers(resolved))
