"""The pybullet quadruped: morphology assets and geometry, the paper's fitness (burn-in, progress, early stop)."""

import math
import xml.etree.ElementTree as ET

import gymnasium
import numpy as np
import pytest

import envs
from envs.morphologies import asset_path, leg_change, morphology_xml, pybullet_ant_xml
from envs.quadruped import CONTROL_DT, DEFAULTS, MorphologyAntBulletEnv, ProgressReward, TerminationGrace, ZeroActionBurnIn
from envs.wrappers import StopAfterNegativeRun

# Lower leg segment (capsule geom in ant.xml) -> the pybullet link that carries it. Both
# are ant.xml's names, which do not give the leg's position (envs/morphologies.py).
LOWER_LEGS = {
    "left_ankle_geom": "front_left_foot",
    "right_ankle_geom": "front_right_foot",
    "third_ankle_geom": "left_back_foot",
    "fourth_ankle_geom": "right_back_foot",
}
HEALTHY_LOWER_LEG = 0.4 * math.sqrt(2.0)  # metres between the capsule's cap centres


def random_actions(n, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, 8)).astype(np.float32)


def rollout(env, actions, seed):
    """Observations (len(actions) + 1, 28) and rewards of one episode, stopping early if it ends."""
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.stack(observations), np.array(rewards)


@pytest.mark.parametrize("morphology", envs.MORPHOLOGIES)
def test_committed_assets_equal_the_generated_ones(morphology):
    # If this fails, pybullet's ant.xml or envs/morphologies.py changed: rerun
    # `python -m envs.morphologies` and review the diff of envs/assets/.
    assert asset_path(morphology).read_text() == morphology_xml(morphology)


def test_healthy_asset_is_pybullets_ant():
    assert asset_path("healthy").read_text() == pybullet_ant_xml()


def lower_leg_geometry(env):
    """{link name: (capsule length in m, link mass in kg)} of the four lower legs of the loaded body."""
    p, body = env.unwrapped._p, env.unwrapped.robot.objects[0]
    link_index = {p.getJointInfo(body, j)[12].decode(): j for j in range(p.getNumJoints(body))}
    lengths = {shape[1]: shape[3][0] for shape in p.getVisualShapeData(body)}
    return {link: (lengths[link_index[link]], p.getDynamicsInfo(body, link_index[link])[0]) for link in LOWER_LEGS.values()}


@pytest.mark.parametrize("morphology", envs.MORPHOLOGIES)
def test_loaded_body_has_the_expected_leg_lengths(morphology):
    env = envs.make("AntBulletEnv-v0", morphology=morphology, burn_in=0)
    env.reset(seed=0)
    geometry = lower_leg_geometry(env)
    env.close()
    healthy = envs.make("AntBulletEnv-v0", burn_in=0)
    healthy.reset(seed=0)
    healthy_geometry = lower_leg_geometry(healthy)
    healthy.close()

    change = leg_change(morphology)
    for geom, link in LOWER_LEGS.items():
        scale = change.scale if change is not None and change.geom == geom else 1.0
        length, mass = geometry[link]
        assert length == pytest.approx(scale * HEALTHY_LOWER_LEG, rel=1e-6), link
        # Mass follows the geometry (inertia from geoms at fixed density): shorter is lighter.
        healthy_mass = healthy_geometry[link][1]
        assert (mass < healthy_mass) if scale < 1 else (mass > healthy_mass) if scale > 1 else mass == pytest.approx(healthy_mass)


def ant_geom_end_points(xml_text):
    """{geom name: end point (x, y, z) of its fromto in the torso frame}, adding the body positions along the chain."""
    root = ET.fromstring(xml_text)
    torso = root.find("./worldbody/body[@name='torso']")
    ends = {}

    def walk(body, offset):
        for geom in body.findall("geom"):
            if "fromto" in geom.attrib:
                ends[geom.get("name")] = offset + np.array([float(v) for v in geom.get("fromto").split()[3:]])
        for child in body.findall("body"):
            walk(child, offset + np.array([float(v) for v in child.get("pos", "0 0 0").split()]))

    walk(torso, np.zeros(3))
    return ends


POSITION_SIGNS = {"front": (0, 1), "back": (0, -1), "left": (1, 1), "right": (1, -1)}  # word -> (axis, sign)


@pytest.mark.parametrize("morphology", [m for m in envs.MORPHOLOGIES if set(m.split("-")) & set(POSITION_SIGNS)])
def test_morphology_names_give_the_physical_position_of_the_changed_leg(morphology):
    # The Ant walks towards +x (the walk target is at x = 1000 m) and +y is its left.
    # "damaged-left" / "damaged-right" are front legs (the paper's two bodies).
    words = set(morphology.split("-")) & set(POSITION_SIGNS)
    if morphology.startswith("damaged-") and not words & {"front", "back"}:
        words.add("front")
    assert words & {"left", "right"} and words & {"front", "back"}
    geom = leg_change(morphology).geom
    healthy_end = ant_geom_end_points(pybullet_ant_xml())[geom]
    changed_end = ant_geom_end_points(morphology_xml(morphology))[geom]
    assert not np.allclose(healthy_end, changed_end)
    for word in words:
        axis, sign = POSITION_SIGNS[word]
        assert np.sign(healthy_end[axis]) == np.sign(changed_end[axis]) == sign, (word, healthy_end, changed_end)

    # The same in the simulator: the link carrying the capsule lies in that quadrant of the torso.
    env = envs.make("AntBulletEnv-v0", morphology=morphology, burn_in=0)
    env.reset(seed=0)
    p, body = env.unwrapped._p, env.unwrapped.robot.objects[0]
    assert env.unwrapped.walk_target_x > 0
    link_index = {p.getJointInfo(body, j)[12].decode(): j for j in range(p.getNumJoints(body))}
    relative = np.array(p.getLinkState(body, link_index[LOWER_LEGS[geom]])[0]) - np.array(p.getBasePositionAndOrientation(body)[0])
    env.close()
    for word in words:
        axis, sign = POSITION_SIGNS[word]
        assert np.sign(relative[axis]) == sign, (word, relative)


def test_each_morphology_moves_differently_under_the_same_actions():
    actions = random_actions(60, seed=1)
    trajectories = {}
    for morphology in envs.MORPHOLOGIES:
        env = envs.make("AntBulletEnv-v0", morphology=morphology)
        trajectories[morphology], _ = rollout(env, actions, seed=5)
        env.close()
    names = list(trajectories)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            n = min(len(trajectories[a]), len(trajectories[b]))
            assert not np.allclose(trajectories[a][:n], trajectories[b][:n], atol=1e-3), (a, b)


def test_same_seed_same_episode_in_fresh_and_reused_envs():
    actions = random_actions(80, seed=2)
    fresh = envs.make("AntBulletEnv-v0", morphology="damaged-left")
    first, rewards = rollout(fresh, actions, seed=11)
    reused = envs.make("AntBulletEnv-v0", morphology="damaged-left")
    rollout(reused, random_actions(30, seed=9), seed=4)  # an unrelated episode first
    second, rewards_again = rollout(reused, actions, seed=11)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(rewards, rewards_again)
    again, _ = rollout(fresh, actions, seed=11)
    np.testing.assert_array_equal(first, again)
    other, _ = rollout(fresh, actions, seed=12)
    assert not np.array_equal(first, other)


def test_burn_in_is_40_zero_action_steps_inside_reset():
    with_burn_in = envs.make("AntBulletEnv-v0")
    obs, info = with_burn_in.reset(seed=3)
    assert info["burn_in_steps"] == 40
    manual = envs.make("AntBulletEnv-v0", burn_in=0)
    manual_obs, _ = manual.reset(seed=3)
    for _ in range(40):
        manual_obs, *_ = manual.step(np.zeros(8, dtype=np.float32))
    np.testing.assert_array_equal(obs, manual_obs)


def test_reward_is_forward_progress_so_return_is_distance():
    env = envs.make("AntBulletEnv-v0", no_progress_patience=None)
    env.reset(seed=0)
    robot = env.unwrapped.robot
    start = np.array(robot.body_xyz[:2])
    total = 0.0
    for action in random_actions(100, seed=3):
        _, reward, terminated, truncated, info = env.step(action)
        assert reward == info["progress"] and info["env_reward"] != reward
        total += reward
        if terminated or truncated:
            break
    end = np.array(robot.body_xyz[:2])
    # Progress is the decrease of the distance to the target at (1000, 0), per second.
    target = np.array([1000.0, 0.0])
    travelled = np.linalg.norm(target - start) - np.linalg.norm(target - end)
    assert abs(travelled) > 1e-3
    assert total * CONTROL_DT == pytest.approx(travelled, rel=1e-4)


def test_falls_only_end_the_episode_after_the_grace_steps():
    # With zero torques the Ant rests on its torso (below 0.26 m: "fallen") from the start;
    # the reference code ignored that until step 200, here no_progress_after=5.
    env = envs.make("AntBulletEnv-v0", no_progress_after=5, no_progress_patience=10_000)
    env.reset(seed=0)
    zero = np.zeros(8, dtype=np.float32)
    for t in range(6):
        _, _, terminated, truncated, info = env.step(zero)
        assert info["fallen"] and info["termination_ignored"] and not (terminated or truncated), t
    _, _, terminated, truncated, info = env.step(zero)
    assert terminated and not truncated and info["fallen"] and "termination_ignored" not in info


def paper_ant(morphology="healthy", **stop):
    """The quadruped's wrapper stack, with falls ignored throughout so that only the no-progress rule can end it."""
    env = TerminationGrace(ZeroActionBurnIn(ProgressReward(MorphologyAntBulletEnv(morphology)), steps=40), until=10**6)
    return StopAfterNegativeRun(env, **stop) if stop else env


def test_no_progress_stop_follows_the_paper_rule():
    # Random torques: the Ant shuffles back and forth, so progress changes sign often.
    after, patience, steps = 20, 3, 400
    actions = random_actions(steps, seed=8)
    _, rewards = rollout(paper_ant(), actions, seed=6)
    assert len(rewards) == steps
    # The reference rule on the uncut rewards: from step after + 1 on, count negative
    # progress in a row and stop once the count exceeds the patience.
    run, expected = 0, None
    for t, reward in enumerate(rewards):
        if t > after:
            run = run + 1 if reward < 0 else 0
            if run > patience:
                expected = t
                break
    assert expected is not None

    cut = paper_ant(limit=patience, start_after=after)
    cut.reset(seed=6)
    for t in range(steps):
        _, reward, terminated, truncated, info = cut.step(actions[t])
        if terminated or truncated:
            break
    assert t == expected and truncated and not terminated and info["early_stop"] == "negative_run"


def test_make_applies_the_paper_stop_with_its_defaults():
    stack = {type(w).__name__: w for w in _wrappers(envs.make("AntBulletEnv-v0"))}
    assert stack["ZeroActionBurnIn"].steps == 40
    assert stack["TerminationGrace"].until == 200
    assert (stack["StopAfterNegativeRun"].limit, stack["StopAfterNegativeRun"].start_after) == (30, 200)
    assert stack["TimeLimit"]._max_episode_steps == 960  # the reference's 1000 less the 40 burn-in steps
    assert "ProgressReward" in stack
    off = envs.make("AntBulletEnv-v0", no_progress_patience=None, reward="env")
    names = {type(w).__name__ for w in _wrappers(off)}
    assert "StopAfterNegativeRun" not in names and "ProgressReward" not in names


def _wrappers(env):
    while env is not env.unwrapped:
        yield env
        env = env.env


def test_time_limit_counts_the_burn_in_steps():
    env = envs.make("AntBulletEnv-v0", max_episode_steps=65, no_progress_patience=None)  # 40 burn-in + 25 agent steps
    env.reset(seed=0)
    actions = random_actions(25, seed=4)
    for t, action in enumerate(actions):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated:
            pytest.fail("the scripted Ant should not fall within 25 steps")
        assert truncated == (t == 24)
    assert env.spec.max_episode_steps == 25


def steps_until_the_end(env, action):
    """Agent steps of one episode under a constant ``action``, with how it ended."""
    env.reset(seed=0)
    for t in range(1, 10_000):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            return t, terminated, truncated
    raise AssertionError("the episode did not end")


# Falls ignored all episode long and no no-progress stop: only the time limit ends it.
NO_EARLY_STOP = {"no_progress_patience": None, "no_progress_after": 10**6}


def test_default_time_limit_gives_the_agent_960_steps_like_the_reference():
    # The reference's AntBulletEnv-v0 TimeLimit (1000) also counted its 40 zero-action steps.
    env = envs.make("AntBulletEnv-v0", **NO_EARLY_STOP)
    assert steps_until_the_end(env, np.zeros(8, dtype=np.float32)) == (960, False, True)
    env.close()


def test_registered_ids_give_the_reference_time_limit():
    for morphology in envs.MORPHOLOGIES:
        assert gymnasium.spec(envs.quadruped_id(morphology)).max_episode_steps == DEFAULTS["max_episode_steps"] - DEFAULTS["burn_in"] == 960
    env = gymnasium.make(envs.quadruped_id("damaged-right"), **NO_EARLY_STOP)
    assert steps_until_the_end(env, np.full(8, 0.3, dtype=np.float32)) == (960, False, True)
    env.close()
    # envs.make of a registered id goes the same way.
    assert envs.make(envs.quadruped_id("damaged-right")).spec.max_episode_steps == 960


@pytest.mark.parametrize(("steps", "burn_in"), [(40, 40), (10, 40), (5, 5)])
def test_time_limit_must_exceed_the_burn_in(steps, burn_in):
    with pytest.raises(ValueError, match="must exceed burn_in"):
        envs.make("AntBulletEnv-v0", max_episode_steps=steps, burn_in=burn_in)


def test_render_rgb_array_works_headless():
    env = envs.make("AntBulletEnv-v0", render_mode="rgb_array", burn_in=0)
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 0
    env.close()
