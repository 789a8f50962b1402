"""Tasks as objects (envs.tasks), and CarRacing's actions squashed in exactly one place.

The bug this guards against: the CarRacing action head squashed whenever the env was a
CarRacing, so an env that squashed too (the former action_mapping="paper") turned full gas
into 0.73 and saturated steering at 0.76. Every way a user can build CarRacing is driven
here with saturated network outputs, and the car itself is read: full steering is 1.0 and
full gas reaches 1.0 (CarRacing ramps gas by 0.1 per step).
"""
from __future__ import annotations

import numpy as np
import pytest

import envs
from hebbian import presets
from hebbian.config import ConfigError


def drive(env, action, steps=12):
    env.reset(seed=0)
    for _ in range(steps):
        env.step(action)
    car = env.unwrapped.car
    return -float(car.wheels[0].steer), float(car.wheels[2].gas), float(car.wheels[2].brake)


def agent_action(preset: str):
    """(env, action) as the agent of `preset` acts with saturated outputs (full left... full gas)."""
    cfg = presets.resolve("CarRacing-v2", flag_values={"preset": preset, "env_options": {"neg_reward_limit": None}})
    problem = presets.problem_from_config(cfg)
    saturated = np.array([1.0, 1.0, -1.0], np.float32)
    if cfg.agent.output_activation == "linear":
        saturated = saturated * 30  # linear outputs: the head's tanh/sigmoid saturate
    return problem, problem.policy.head(saturated)


@pytest.mark.parametrize("way", ["envs.make fast", "envs.make exact", "evaluation protocol"])
def test_full_controls_reach_the_car_from_every_env(way):
    if way == "envs.make fast":
        env = envs.make("CarRacing-v2", neg_reward_limit=None)
    elif way == "envs.make exact":
        env = envs.make("CarRacing-v3", exact_env=True, neg_reward_limit=None)
    else:
        env = envs.CAR_RACING.make_evaluation("CarRacing-v3")
    _, action = agent_action("paper")
    steer, gas, brake = drive(env, action)
    assert steer == pytest.approx(1.0, abs=1e-6) and gas == pytest.approx(1.0, abs=1e-6) and brake == pytest.approx(0.0, abs=1e-6)
    env.close()


@pytest.mark.parametrize("preset", ["paper", "attention-agent"])
def test_full_controls_reach_the_car_from_every_preset(preset):
    problem, action = agent_action(preset)
    np.testing.assert_allclose(action, [1.0, 1.0, 0.0], atol=1e-6)
    steer, gas, brake = drive(problem.envs[0], action)
    assert steer == pytest.approx(1.0, abs=1e-6) and gas == pytest.approx(1.0, abs=1e-6) and brake == pytest.approx(0.0, abs=1e-6)
    problem.close()


def test_an_env_side_squash_is_no_longer_an_option():
    with pytest.raises(ValueError, match="unknown option"):
        envs.make("CarRacing-v3", action_mapping="paper")
    cfg = presets.resolve("CarRacing-v2", file_values={"env_options": {"action_mapping": "paper"}})
    with pytest.raises(ValueError, match="unknown option"):
        presets.problem_from_config(cfg)


def test_every_id_has_one_task():
    assert envs.task_for("CarRacing-v2") is envs.CAR_RACING and envs.CAR_RACING.pixels and envs.CAR_RACING.car_controls
    assert envs.task_for("HebbianAnt-damaged-left-v0") is envs.QUADRUPED and envs.QUADRUPED.morphologies
    assert envs.task_for("CartPole-v1") is envs.GENERIC and not envs.GENERIC.pixels
    assert dict(envs.CAR_RACING.evaluation_options) == {"neg_reward_limit": None, "exact_env": True}
    assert dict(envs.QUADRUPED.evaluation_options) == {"no_progress_patience": None}
    with pytest.raises(envs.UnknownEnvironmentError):
        envs.task_for("NoSuchTask-v0")


def test_presets_exist_for_every_task():
    for task in envs.TASKS:
        assert "paper" in presets.preset_names(task.name)
    with pytest.raises(ConfigError, match="no preset 'attention-agent'"):
        presets.resolve("CartPole-v1", flag_values={"preset": "attention-agent"})
