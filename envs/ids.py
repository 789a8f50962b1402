"""Environment ids: old-name aliases, task families, and the error for an unknown id.

Nothing here builds an environment, so callers (run directories, per-task defaults) can
resolve an id cheaply with :func:`canonical_id` (and its task with :func:`envs.task_for`).
"""

from __future__ import annotations

import difflib
import warnings

import gymnasium
from gymnasium.envs.registration import find_highest_version, parse_env_id

from envs.morphologies import MORPHOLOGIES


class UnknownEnvironmentError(ValueError):
    """An environment id that is neither registered with Gymnasium nor a known alias."""


class EnvironmentAliasWarning(UserWarning):
    """An old id was mapped to the installed version (one line: which id runs instead)."""


# Old names that users and the paper type, mapped to the *name* of the task; the version
# that runs is the highest one registered at run time ("the installed CarRacing").
# Gymnasium 1.x dropped these versions: CarRacing-v0..v2 differ from v3 only in fixes to
# the reward of the last tile and the lap-completion rule; LunarLander-v2 / BipedalWalker-v2
# are the Box2D tasks before their v3 bug fixes.
_ALIASES: dict[str, str] = {
    "CarRacing-v0": "CarRacing",
    "CarRacing-v1": "CarRacing",
    "CarRacing-v2": "CarRacing",
    "LunarLander-v2": "LunarLander",
    "LunarLanderContinuous-v2": "LunarLanderContinuous",
    "BipedalWalker-v2": "BipedalWalker",
    "BipedalWalkerHardcore-v2": "BipedalWalkerHardcore",
}

QUADRUPED_BASE_ID = "AntBulletEnv-v0"
"""The pybullet-envs-gymnasium Ant; ``envs.make`` turns it into the paper's quadruped task."""


def quadruped_id(morphology: str) -> str:
    """Registered id of the paper's quadruped task with ``morphology``, e.g. ``HebbianAnt-damaged-left-v0``."""
    return f"HebbianAnt-{morphology}-v0"


QUADRUPED_IDS: dict[str, str] = {quadruped_id(m): m for m in MORPHOLOGIES}
"""Registered id -> morphology, for every quadruped id this package registers."""


def _import_registering_packages() -> None:
    # pybullet-envs-gymnasium registers AntBulletEnv-v0 and friends on import; importing it
    # is cheap (it does not start a physics server) and lets those ids appear in the
    # registry and in the close matches of an unknown id.
    import pybullet_envs_gymnasium  # noqa: F401


def _registered(env_id: str) -> bool:
    return env_id in gymnasium.registry


def canonical_id(env_id: str, *, warn: bool = False) -> str:
    """The registered id that ``env_id`` runs as, without building anything.

    Registered ids come back unchanged; old names (``CarRacing-v2``, ``LunarLander-v2``,
    ``BipedalWalker-v2``...) map to the highest registered version of the same task. With
    ``warn=True`` a mapped alias emits one :class:`EnvironmentAliasWarning` naming the
    version that runs. Raises :class:`UnknownEnvironmentError` for anything else.
    """
    if not isinstance(env_id, str):
        raise UnknownEnvironmentError(f"environment id must be a string, got {type(env_id).__name__}")
    if _registered(env_id):
        return env_id
    if env_id in _ALIASES:
        name = _ALIASES[env_id]
        version = find_highest_version(None, name)
        if version is None:
            raise UnknownEnvironmentError(f"{env_id!r} is an alias of {name!r}, which this Gymnasium does not register; install gymnasium[box2d]")
        target = f"{name}-v{version}"
        if warn:
            warnings.warn(f"{env_id} is not in Gymnasium {gymnasium.__version__}; running {target} instead", EnvironmentAliasWarning, stacklevel=3)
        return target
    _import_registering_packages()
    if _registered(env_id):
        return env_id
    raise UnknownEnvironmentError(_unknown_message(env_id))


def _unknown_message(env_id: str) -> str:
    candidates = sorted(set(gymnasium.registry) | set(_ALIASES))
    close = difflib.get_close_matches(env_id, candidates, n=5, cutoff=0.6)
    if not close:
        # Same task name, other version (e.g. Pendulum-v0 -> Pendulum-v1): difflib's ratio
        # can miss these for long names, so look them up by name.
        try:
            _, name, _ = parse_env_id(env_id)
        except gymnasium.error.Error:
            name = env_id
        close = [c for c in candidates if c.split("/")[-1].rsplit("-v", 1)[0] == name][:5]
    hint = f"did you mean {', '.join(close)}?" if close else "no registered id is close to it."
    return f"unknown environment id {env_id!r}: {hint} List all ids with `python -c \"import gymnasium; gymnasium.pprint_registry()\"`."
