"""envs.make: ids, aliases, options, and Gymnasium's env checker on everything this package builds."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # CarRacing touches pygame; never open a window

import warnings

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import envs

# check_env warns when handed a wrapped env (we check the wrapped stack on purpose: the
# wrappers are what this package adds). Any other warning it raises is a failure.
_EXPECTED_CHECKER_WARNING = "is different from the unwrapped version"


def assert_env_checks(env: gymnasium.Env) -> None:
    """Run check_env without its render check (the quadruped's "human" mode opens a pybullet GUI, which needs a display)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    unexpected = [str(w.message) for w in caught if issubclass(w.category, UserWarning) and _EXPECTED_CHECKER_WARNING not in str(w.message)]
    assert unexpected == []


@pytest.mark.parametrize("env_id", [envs.quadruped_id(m) for m in envs.MORPHOLOGIES] + ["FastCarRacing-v3"])
def test_check_env_passes_for_every_registered_id(env_id):
    assert env_id in gymnasium.registry
    env = gymnasium.make(env_id)
    assert_env_checks(env)
    env.close()


@pytest.mark.parametrize(
    ("env_id", "options"),
    [
        ("CarRacing-v3", {}),
        ("CarRacing-v3", {"frame_size": 96, "neg_reward_limit": None}),
        ("CarRacing-v3", {"exact_env": True}),
        ("AntBulletEnv-v0", {"morphology": "damaged-right"}),
        ("LunarLander-v3", {}),
    ],
)
def test_check_env_passes_for_envs_make(env_id, options):
    env = envs.make(env_id, **options)
    assert_env_checks(env)
    env.close()


def test_car_racing_trains_on_the_fast_env_and_exact_env_gives_gymnasiums():
    from gymnasium.envs.box2d.car_racing import CarRacing

    from envs.fast_car_racing import FastCarRacing

    assert type(envs.make("CarRacing-v3").unwrapped) is FastCarRacing
    assert type(envs.make("CarRacing-v3", exact_env=True).unwrapped) is CarRacing


def test_registered_ids_are_the_documented_ones():
    assert envs.QUADRUPED_IDS == {f"HebbianAnt-{m}-v0": m for m in envs.MORPHOLOGIES}
    assert set(envs.MORPHOLOGIES) >= {"healthy", "damaged-left", "damaged-right"}
    assert len(envs.MORPHOLOGIES) >= 5


@pytest.mark.parametrize(
    ("alias", "target"),
    [
        ("CarRacing-v0", "CarRacing-v3"),
        ("CarRacing-v1", "CarRacing-v3"),
        ("CarRacing-v2", "CarRacing-v3"),
        ("LunarLander-v2", "LunarLander-v3"),
        ("BipedalWalker-v2", "BipedalWalker-v3"),
    ],
)
def test_old_names_map_to_installed_version_with_one_notice(alias, target):
    assert envs.canonical_id(alias) == target
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = envs.make(alias)
    notices = [w for w in caught if issubclass(w.category, envs.EnvironmentAliasWarning)]
    assert len(notices) == 1
    message = str(notices[0].message)
    assert "\n" not in message and alias in message and target in message
    # CarRacing names train on the frame-identical fast env, registered under its own id.
    fast = envs.task_for(target) is envs.CAR_RACING
    assert env.unwrapped.spec.id == ("FastCarRacing-v3" if fast else target)
    env.close()


def test_registered_id_runs_as_is_without_notice():
    with warnings.catch_warnings():
        warnings.simplefilter("error", envs.EnvironmentAliasWarning)
        env = envs.make("Pendulum-v1", max_episode_steps=7)
    assert env.spec.id == "Pendulum-v1" and env.spec.max_episode_steps == 7
    env.close()


def test_unknown_id_lists_close_matches_in_one_line():
    with pytest.raises(envs.UnknownEnvironmentError) as info:
        envs.make("CarRacing-v9")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message
    assert "CarRacing-v3" in message and "pprint_registry" in message
    with pytest.raises(envs.UnknownEnvironmentError, match="LunarLander-v3"):
        envs.canonical_id("LunarLandr-v3")


@pytest.mark.parametrize(
    ("env_id", "options", "pattern"),
    [
        ("LunarLander-v3", {"frame_size": 84}, "unknown option.*frame_size.*gravity"),
        ("CarRacing-v2", {"morphology": "healthy"}, "unknown option.*morphology.*neg_reward_limit"),
        ("AntBulletEnv-v0", {"morphologies": ["healthy"]}, "make_many"),
        ("AntBulletEnv-v0", {"morphology": "three-legged"}, "unknown morphology.*damaged-left"),
        ("HebbianAnt-damaged-left-v0", {"morphology": "healthy"}, "has morphology 'damaged-left'"),
        ("CarRacing-v3", {"frame_size": 100}, "frame_size must be"),
        ("CarRacing-v3", {"neg_reward_limit": -1}, "neg_reward_limit must be"),
        ("AntBulletEnv-v0", {"burn_in": -5}, "burn_in must be"),
        ("AntBulletEnv-v0", {"reward": "distance"}, "reward must be"),
    ],
)
def test_bad_options_raise_one_line_value_error(env_id, options, pattern):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", envs.EnvironmentAliasWarning)
        with pytest.raises(ValueError, match=pattern) as info:
            envs.make(env_id, **options)
    assert "\n" not in str(info.value)


def test_task_for_picks_the_task_per_id():
    assert envs.task_for("CarRacing-v2") is envs.CAR_RACING
    assert envs.task_for("CarRacing-v3") is envs.CAR_RACING
    assert envs.task_for("AntBulletEnv-v0") is envs.QUADRUPED
    assert envs.task_for("HebbianAnt-long-front-left-v0") is envs.QUADRUPED
    assert envs.task_for("LunarLander-v2") is envs.GENERIC
    assert envs.task_for("Pendulum-v1") is envs.GENERIC
    with pytest.raises(envs.UnknownEnvironmentError):
        envs.task_for("NoSuchTask-v0")


def test_make_many_builds_one_env_per_morphology():
    built = envs.make_many("AntBulletEnv-v0", morphologies=["healthy", "damaged-right"], burn_in=5)
    assert [env.unwrapped.morphology for env in built] == ["healthy", "damaged-right"]
    for env in built:
        env.close()
    with pytest.raises(ValueError, match="AntBulletEnv-v0"):
        envs.make_many("LunarLander-v3", morphologies=["healthy"])
    with pytest.raises(ValueError, match="non-empty list"):
        envs.make_many("AntBulletEnv-v0", morphologies="healthy")
    with pytest.raises(ValueError, match="unknown morphology"):
        envs.make_many("AntBulletEnv-v0", morphologies=["healthy", "winged"])


def test_envs_does_not_import_hebbian_or_es():
    import subprocess
    import sys

    code = "import sys, envs; envs.make('Pendulum-v1'); print(sorted(m for m in ('hebbian', 'es') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
