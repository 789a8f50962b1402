"""The paper's presets against the paper's code (enajx/HebbianMetaLearning), point by point.

Each test holds our code to a transcription of the reference's formulas written here, in
the reference's own terms (its names, its loops, its coefficient layout), so that a later
change to the presets, the strategy, the networks or the bodies cannot drift silently:

1. fitness shaping: `compute_centered_ranks`, then (r - mean) / std (`_update_coeffs`);
2. one ES update on known noise: theta += lr / (popsize * sigma) * sum_k eps_k r_k, then
   the lr and sigma decays with their floors;
3. the starting centre: torch.randn for the coefficients and the CNN's weights (N(0, 1));
4. the Bullet tasks' output layer: o3 = tanh(W3 o2) is the action and the update's post
   activity, no weight normalisation (`fitness_functions.py`);
5. the damaged bodies: the numbers of `damaged_bullet_morphologies/ant_asym_*.xml`;
6. the coefficient penalty: - 0.01 * np.mean(coeffs**2) on the coefficients only;
7. the quadruped's 1000-step limit, which counts the 40 burn-in steps;
and the settings of `train_hebb.py`'s argparse defaults.

The self-attention agent's preset is checked against AttentionAgent's configs/CarRacing.gin.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import envs
import es
from es.population import materialize
from hebbian import presets
from hebbian.agent import Policy
from hebbian.network import HebbianNetwork

# train_hebb.py's argparse defaults and evolution_strategy_hebb.py's constants.
REFERENCE = {"hebb_rule": "ABCD_lr", "popsize": 200, "lr": 0.2, "decay": 0.995, "sigma": 0.1, "generations": 300,
             "init_weights": "uni", "distribution": "normal", "lr_floor": 0.001, "sigma_decay": 0.999,
             "sigma_floor": 0.01, "penalty": 0.01}


# -- transcriptions of the reference -------------------------------------------------------
def ref_compute_centered_ranks(x):
    ranks = np.empty(len(x), dtype=int)
    ranks[x.argsort()] = np.arange(len(x))
    y = ranks.astype(np.float32)
    y /= (x.size - 1)
    y -= .5
    return y


def ref_shaped(rewards):
    rewards = ref_compute_centered_ranks(rewards)
    return (rewards - rewards.mean()) / rewards.std()


def ref_update(coeffs, population, rewards, lr, sigma, popsize):
    """`_update_coeffs`: one step and the decays; population (P, n) of unit noise."""
    rewards = ref_shaped(rewards)
    update_factor = lr / (popsize * sigma)
    coeffs = coeffs + update_factor * np.dot(population.T, rewards).T
    if lr > 0.001:
        lr *= REFERENCE["decay"]
    if sigma > 0.01:
        sigma *= 0.999
    return coeffs, lr, sigma


def ref_bullet_rollout(coeffs_ref, w12, w23, w34, observations):
    """fitness_functions.py on a Bullet task: actions o3 = tanh(...), ABCD_lr update, no
    normalisation. Weights as torch Linear stores them, (out, in); coeffs (synapses, 5) in
    the reference's column order A, B, C, eta, D."""
    w12, w23, w34 = (w.astype(np.float64).copy() for w in (w12, w23, w34))
    actions = []
    for obs in observations:
        o0 = obs.astype(np.float64)
        o1 = np.tanh(w12 @ o0)
        o2 = np.tanh(w23 @ o1)
        o3 = np.tanh(w34 @ o2)
        actions.append(o3)
        offset = 0
        for w, pre, post in ((w12, o0, o1), (w23, o1, o2), (w34, o2, o3)):
            for i in range(w.shape[1]):
                for j in range(w.shape[0]):
                    c = coeffs_ref[offset + (w.shape[0] - 1) * i + i + j]
                    w[:, i][j] += c[3] * (c[0] * pre[i] * post[j] + c[1] * pre[i] + c[2] * post[j] + c[4])
            offset += w.shape[1] * w.shape[0]
    return np.array(actions), (w12, w23, w34)


# -- the settings -----------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["CarRacing-v2", "AntBulletEnv-v0", "LunarLander-v3"])
def test_paper_presets_are_the_reference_defaults(env_id):
    cfg = presets.resolve(env_id)
    ev, st, agent = cfg.evolution, cfg.strategy_options, cfg.agent
    assert cfg.preset == "paper"
    assert (agent.network, agent.rule, agent.hidden) == ("hebbian", REFERENCE["hebb_rule"], [128, 64])
    assert (agent.init, agent.init_scale) == ("uniform", 0.1)            # torch.nn.init.uniform_(w, -0.1, 0.1)
    assert (ev.strategy, ev.popsize, ev.generations, ev.lr, ev.sigma) == (
        "openai-es", REFERENCE["popsize"], REFERENCE["generations"], REFERENCE["lr"], REFERENCE["sigma"])
    assert (ev.centre_init, ev.centre_init_scale) == ("normal", 1.0)     # torch.randn
    assert ev.coeff_penalty == REFERENCE["penalty"]
    assert (st.shaping, st.optimizer, st.momentum, st.weight_decay) == ("standardized_ranks", "sgd", 0.0, 0.0)
    assert (st.lr_decay, st.lr_limit) == (REFERENCE["decay"], REFERENCE["lr_floor"])
    assert (st.sigma_decay, st.sigma_limit) == (REFERENCE["sigma_decay"], REFERENCE["sigma_floor"])
    bullet = env_id == "AntBulletEnv-v0"
    assert agent.normalize is (not bullet)                                # normalised_weights
    assert agent.output_activation == ("tanh" if bullet else "linear")
    if env_id.startswith("CarRacing"):
        assert agent.encoder == "cnn" and cfg.env.env_options["neg_reward_limit"] == 20   # neg_count > 20


def test_attention_agent_preset_is_the_authors_config():
    cfg = presets.resolve("CarRacing-v2", flag_values={"preset": "attention-agent"})
    ev = cfg.evolution
    assert (ev.strategy, ev.popsize, ev.sigma, ev.episodes, ev.lr) == ("cma", 256, 0.1, 16, None)
    assert (ev.generations, ev.eval_every, ev.eval_episodes) == (2000, 10, 100)
    assert (cfg.agent.encoder, cfg.agent.network, cfg.agent.hidden, cfg.agent.output_activation) == (
        "patch-attention", "lstm", [16], "tanh")
    assert ev.coeff_penalty == 0.0 and ev.centre_init == "torch-default"
    assert cfg.env.env_options["neg_reward_limit"] == 20 and cfg.env.env_options["frame_size"] == 96
    problem = presets.problem_from_config(cfg)
    assert problem.num_params == 3667
    assert problem.policy.spec.sizes() == {"encoder": 1184, "network": 2483}
    # CarRacingTask._process_action: a * (high - low) / 2 + (high + low) / 2 on the tanh outputs.
    low, high = np.array([-1.0, 0, 0]), np.array([1.0, 1, 1])
    for y in (np.array([1.0, 1, 1], np.float32), np.array([-1.0, -1, -1], np.float32), np.array([0.3, -0.2, 0.9], np.float32)):
        np.testing.assert_allclose(problem.policy.head(y), y * (high - low) / 2 + (high + low) / 2, atol=1e-7)
    problem.close()


# -- 1. shaping -------------------------------------------------------------------------------
@pytest.mark.parametrize("popsize", [2, 10, 200])
def test_standardized_ranks_equal_the_reference(popsize):
    fitness = np.random.default_rng(popsize).normal(size=popsize) * 100  # no ties: argsort ranks are unique
    np.testing.assert_allclose(es.SHAPINGS["standardized_ranks"](fitness), ref_shaped(fitness.astype(np.float32)),
                               rtol=1e-6, atol=1e-6)


def test_standardized_steps_are_3_4_times_centred_ranks_at_popsize_200():
    fitness = np.random.default_rng(0).normal(size=200)
    ratio = np.abs(es.SHAPINGS["standardized_ranks"](fitness)).sum() / np.abs(es.centered_ranks(fitness)).sum()
    assert ratio == pytest.approx(1 / np.std(np.arange(200) / 199 - 0.5), rel=1e-9) and 3.4 < ratio < 3.5


# -- 2. one ES update -------------------------------------------------------------------------
def test_one_es_update_equals_the_reference():
    n, popsize = 40, 10
    cfg = presets.resolve("CartPole-v1", flag_values={"popsize": popsize})
    strategy = presets.strategy_from_config(cfg, n)
    centre = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    state = strategy.init(centre, seed=3)
    for _ in range(3):  # three generations: the decays are checked too
        pop = strategy.ask(state)
        members = np.stack([materialize(pop.shared, m) for m in pop.members]).astype(np.float64)
        noise = (members - state.centre) / state.sigma            # the reference's population, [x, -x, ...]
        fitness = np.random.default_rng(pop.generation).normal(size=popsize)
        want, lr, sigma = ref_update(state.centre.astype(np.float64), noise, fitness.astype(np.float32),
                                     state.lr, state.sigma, popsize)
        state = strategy.tell(state, pop, fitness)
        np.testing.assert_allclose(state.centre, want, rtol=1e-5, atol=1e-5)
        assert state.lr == pytest.approx(lr, rel=1e-12) and state.sigma == pytest.approx(sigma, rel=1e-12)


# -- 3. the starting centre ---------------------------------------------------------------------
def test_starting_centre_is_standard_normal_for_coefficients_and_cnn():
    problem = presets.problem_from_config(presets.resolve("CarRacing-v2"))
    centre = problem.initial_params(0)
    parts = problem.policy.spec.split(centre)
    assert parts["encoder"].size == 1362 and parts["network"].size == 456_640
    for name, values in parts.items():
        se = 1 / np.sqrt(values.size)
        assert abs(values.mean()) < 5 * se, name
        assert abs(values.std() - 1.0) < 5 * se * np.sqrt(2), name
        assert abs(np.mean(values.astype(np.float64) ** 4) - 3.0) < 0.2, name  # a normal's kurtosis, not a uniform's 1.8
    problem.close()


# -- 4. the Bullet output layer -------------------------------------------------------------------
def test_bullet_output_is_tanh_and_the_updates_post_activity():
    cfg = presets.resolve("AntBulletEnv-v0")
    problem = presets.problem_from_config(cfg)
    policy: Policy = problem.policy
    assert isinstance(policy.network, HebbianNetwork)
    params = problem.initial_params(5) * np.float32(0.3)  # N(0, 0.09): no divergence within these steps
    policy.set_params(params)
    policy.reset(7)
    w12, w23, w34 = (w.T.copy() for w in policy.network.weights)        # ours (in, out) -> torch's (out, in)
    coeffs = np.concatenate([c.reshape(-1, 5) for c in policy.network.coefficients])
    coeffs_ref = coeffs[:, [0, 1, 2, 4, 3]]                              # ours A, B, C, D, eta -> A, B, C, eta, D
    env = problem.envs[0]
    obs, _ = env.reset(seed=11)
    observations, actions = [], []
    for _ in range(12):
        observations.append(np.asarray(obs, np.float32))
        action = policy.act(obs)
        actions.append(np.array(action, np.float64))
        obs, *_ = env.step(action)
    want, ref_weights = ref_bullet_rollout(coeffs_ref, w12, w23, w34, observations)
    np.testing.assert_allclose(np.array(actions), want, rtol=2e-4, atol=2e-5)
    for ours, theirs in zip(policy.network.weights, ref_weights):   # the last step's update included
        np.testing.assert_allclose(ours.T, theirs, rtol=1e-3, atol=1e-4)
    assert not policy.network.diverged
    problem.close()


# -- 6. the coefficient penalty --------------------------------------------------------------------
def test_penalty_covers_the_coefficients_only():
    cfg = presets.resolve("CarRacing-v2", flag_values={"env_options": {"max_episode_steps": 3}})
    problem = presets.problem_from_config(cfg)
    params = problem.initial_params(2)
    params[:1362] *= 50  # CNN weights: the reference does not penalise them
    fitness, _, returns = problem.evaluate(params, [4])
    coeffs = params[1362:]
    assert fitness == pytest.approx(np.mean(returns) - 0.01 * np.mean(coeffs.astype(np.float64) ** 2), rel=1e-9)
    problem.close()


def test_penalty_skips_coevolved_initial_weights():
    cfg = presets.resolve("CartPole-v1", flag_values={"init": "coevolve", "hidden": [4]})
    problem = presets.problem_from_config(cfg)
    params = problem.initial_params(0)
    network = problem.policy.network
    params[network.num_coeffs:] = 100.0
    fitness, _, returns = problem.evaluate(params, [1])
    coeffs = params[: network.num_coeffs]
    assert fitness == pytest.approx(np.mean(returns) - 0.01 * np.mean(coeffs.astype(np.float64) ** 2), rel=1e-9)


# -- 5. and 7. the quadruped's bodies and time limit ------------------------------------------------
# The one line in which the reference's damaged bodies (enajx/HebbianMetaLearning,
# damaged_bullet_morphologies/ant_asym_{left,right}.xml) differ from pybullet's ant.xml,
# transcribed from those files.
REFERENCE_DAMAGED_LINES = {
    "damaged-left": ("left_ankle_geom", 'fromto="0.0 0.0 0.0 0.1 0.1 0.0" name="left_ankle_geom"'),  # ant_asym_left.xml
    "damaged-right": ("fourth_ankle_geom", 'fromto="0.0 0.0 0.0 0.1 -0.1 0.0" name="fourth_ankle_geom"'),  # ant_asym_right.xml
}


@pytest.mark.parametrize("morphology", sorted(REFERENCE_DAMAGED_LINES))
def test_paper_damaged_bodies_equal_the_reference_files(morphology):
    geom, reference = REFERENCE_DAMAGED_LINES[morphology]
    from envs.morphologies import asset_path, leg_change, morphology_xml

    healthy = asset_path("healthy").read_text()
    expected, count = re.subn(r'fromto="[^"]*" name="' + geom + '"', reference, healthy)
    assert count == 1
    changed = [(a, b) for a, b in zip(healthy.splitlines(), expected.splitlines()) if a != b]
    assert len(changed) == 1 and reference in changed[0][1]
    assert asset_path(morphology).read_text() == expected == morphology_xml(morphology)
    assert leg_change(morphology).geom == geom and leg_change(morphology).scale == 0.25



def test_quadruped_time_limit_counts_the_burn_in():
    env = envs.make("AntBulletEnv-v0")
    assert env.spec.max_episode_steps + 40 == 1000
    env.close()
