"""Agents: encoder + network + action head, their flat parameter vector, and the fitness problem.

A policy's parameters are one float32 vector cut into parts by a `ParamSpec`, in this order:
the encoder's evolved weights (if any), then the network's parameters (see
`hebbian.network`). Each part is a view, so `set_params` never copies.

`AgentProblem` is what evolution optimises (it follows `es.problem.Problem` without
importing `es`): `evaluate(params, seeds)` plays one episode per seed (per morphology when
several are given) with weights drawn fresh from that seed, and returns the mean return
minus an optional coefficient penalty, the environment steps taken and every return.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

import envs
from hebbian.config import AgentConfig, EvolutionConfig
from hebbian.encoders import make_encoder
from hebbian.lstm import LSTMNetwork
from hebbian.network import HebbianNetwork, StaticNetwork
from hebbian.portable_math import tanh32_array


@dataclass(frozen=True)
class ParamSpec:
    """Named consecutive parts of a flat parameter vector.

    Attributes:
        parts: (name, size) pairs in vector order.
    """

    parts: tuple[tuple[str, int], ...]

    @property
    def num_params(self) -> int:
        return sum(size for _, size in self.parts)

    def sizes(self) -> dict[str, int]:
        """Parameters per part, e.g. {"encoder": 1362, "network": 456640}."""
        return dict(self.parts)

    def split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Views of `flat` (float32, (num_params,)) per part."""
        if flat.shape != (self.num_params,):
            raise ValueError(f"parameter vector has {flat.shape} values, the agent needs ({self.num_params},)")
        views, start = {}, 0
        for name, size in self.parts:
            views[name] = flat[start: start + size]
            start += size
        return views


# -- action heads: network outputs -> environment actions ---------------------------------
# Each head squashes at most once: with output_activation="tanh" the network's outputs are
# already in [-1, 1] and the head only rescales them; with a linear output the head squashes.
class DiscreteHead:
    """Discrete(n): the index of the largest output."""

    def __init__(self, space: gym.spaces.Discrete):
        self.num_outputs = int(space.n)
        self._start = int(space.start)

    def __call__(self, y: np.ndarray):
        return int(np.argmax(y)) + self._start


class BoxHead:
    """Box: outputs mapped into [low, high] where both bounds are finite, the raw output elsewhere.

    squashed=False (linear outputs): low + (tanh(y) + 1) / 2 * (high - low).
    squashed=True (outputs already tanh'ed by the network): low + (y + 1) / 2 * (high - low),
    the affine map of the AttentionAgent's CarRacingTask and, for [-1, 1] bounds (the
    quadruped), the identity, as the reference code's Bullet actions.
    """

    def __init__(self, space: gym.spaces.Box, squashed: bool = False):
        self.num_outputs = int(np.prod(space.shape))
        self.squashed = bool(squashed)
        self._shape = space.shape
        self._bounded = np.isfinite(space.low) & np.isfinite(space.high)
        self._low = np.where(self._bounded, space.low, 0).astype(np.float32).ravel()
        self._span = np.where(self._bounded, space.high - space.low, 0).astype(np.float32).ravel()
        self._bounded = self._bounded.ravel()
        self._dtype = space.dtype

    def __call__(self, y: np.ndarray):
        unit = y if self.squashed else tanh32_array(y)
        scaled = self._low + (unit + 1) * 0.5 * self._span
        return np.where(self._bounded, scaled, y).astype(self._dtype).reshape(self._shape)


class CarRacingHead:
    """CarRacing's (steer, gas, brake) from linear outputs: tanh for steering in [-1, 1],
    sigmoid for gas and brake in [0, 1] (the Hebbian paper's reference code)."""

    num_outputs = 3

    def __call__(self, y: np.ndarray):
        # Three scalars: Python's math in double precision, rounded to float32 once, takes
        # ~0.8 us against ~1.3 us for NumPy's float32 scalar ufuncs (inside a step, where
        # their code is cold, ~2.2 against ~2.8 us), which counts at ~100 us a CarRacing
        # step. The values are the correctly rounded ones up to rare double-rounding ties;
        # NumPy's float32 functions differ from them in the last bit for ~3/4 of inputs.
        steer, gas, brake = y.tolist()
        return np.array([math.tanh(steer), _sigmoid_scalar(gas), _sigmoid_scalar(brake)], dtype=np.float32)


def _sigmoid_scalar(v: float) -> float:
    """1 / (1 + exp(-v)) for a Python float, without overflow (exp is capped at e**700, where the
    result is 0 in float32 anyway)."""
    return 1.0 / (1.0 + math.exp(min(-v, 700.0)))


def make_head(action_space: gym.Space, env_id: str | None = None, squashed: bool = False):
    """The action head for `action_space`; `squashed`: the network's outputs are already tanh'ed.

    A task with CarRacing's controls (`envs.Task.car_controls`) gets the paper's
    tanh/sigmoid head for linear outputs: the one place where its actions are squashed.
    """
    if isinstance(action_space, gym.spaces.Discrete):
        return DiscreteHead(action_space)
    if isinstance(action_space, gym.spaces.Box):
        if not squashed and env_id is not None and envs.task_for(env_id).car_controls:
            return CarRacingHead()
        return BoxHead(action_space, squashed=squashed)
    raise ValueError(f"action space {action_space} is not supported; use a Discrete or Box action space")


# -- the policy --------------------------------------------------------------------------------
def _flat_size(space: gym.Space) -> int:
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    raise ValueError(f"observation space {space} is not supported; use a Box or Discrete observation space")


class Policy:
    """encoder (optional) -> network -> action head, all parameters in one flat float32 vector.

    Args:
        config: the AgentConfig.
        observation_space, action_space: the environment's spaces.
        env_id: used only to pick task-specific action heads (CarRacing).
        encoder_options: keyword options of the encoder (a pretrained one's checksum).
    """

    def __init__(self, config: AgentConfig, observation_space: gym.Space, action_space: gym.Space,
                 env_id: str | None = None, encoder_options: dict | None = None):
        self.config = config
        self.head = make_head(action_space, env_id, squashed=config.output_activation == "tanh")
        self.encoder = None
        if config.encoder:
            self.encoder = make_encoder(config.encoder, **(encoder_options or {}))
            if tuple(observation_space.shape) != tuple(self.encoder.obs_shape):
                raise ValueError(f"encoder {config.encoder!r} takes observations of shape {self.encoder.obs_shape}, "
                                 f"the environment gives {observation_space.shape}")
            n_in = self.encoder.num_features
        else:
            n_in = _flat_size(observation_space)
        self._one_hot = np.eye(n_in, dtype=np.float32) if isinstance(observation_space, gym.spaces.Discrete) else None
        sizes = (n_in, *config.hidden, self.head.num_outputs)
        if config.network == "hebbian":
            self.network = HebbianNetwork(sizes, rule=config.rule, activation=config.activation, init=config.init,
                                          init_scale=config.init_scale, normalize=config.normalize,
                                          weight_limit=config.weight_limit,
                                          output_activation=config.output_activation)
        elif config.network == "static":
            self.network = StaticNetwork(sizes, activation=config.activation,
                                         output_activation=config.output_activation)
        elif config.network == "lstm":
            self.network = LSTMNetwork(sizes, output_activation=config.output_activation)
        else:
            raise ValueError(f"unknown network {config.network!r}; choose 'hebbian', 'static' or 'lstm'")
        parts = []
        if self.encoder is not None and self.encoder.num_params:
            parts.append(("encoder", self.encoder.num_params))
        parts.append(("network", self.network.num_params))
        self.spec = ParamSpec(tuple(parts))
        self.num_params = self.spec.num_params

    def penalised(self, flat: np.ndarray) -> np.ndarray:
        """The part of `flat` the coefficient penalty covers, as the reference's
        `np.mean(coeffs**2)`: a Hebbian network's plasticity coefficients (not co-evolved
        initial weights, not the encoder's weights), the weights of the other networks."""
        network = self.spec.split(flat)["network"]
        if isinstance(self.network, HebbianNetwork):
            return network[: self.network.num_coeffs]
        return network

    def set_params(self, flat: np.ndarray) -> None:
        """Use `flat` (float32, (num_params,)) as all parameters, as views."""
        views = self.spec.split(flat)
        if "encoder" in views:
            self.encoder.set_params(views["encoder"])
        self.network.set_params(views["network"])

    def reset(self, seed) -> None:
        """Start an episode: fresh initial weights drawn from `seed`."""
        self.network.reset(seed)

    def features(self, obs) -> np.ndarray:
        """The network input for one observation, float32 (sizes[0],)."""
        if self.encoder is not None:
            return self.encoder.encode(obs)
        if self._one_hot is not None:
            return self._one_hot[int(obs)]
        return np.asarray(obs, dtype=np.float32).reshape(-1)

    def act(self, obs):
        """One step: observation -> action (the network's plasticity update included).

        Every network keeps its outputs finite and raises its `diverged` flag when it had to
        (the kernel's guard, the LSTM's, the static network's), so no NaN action is sent.
        """
        return self.head(self.network.step(self.features(obs)))


def episode_seeds(seed: int) -> tuple[int, int]:
    """(environment seed, initial-weight seed) for the episode named by `seed`, independent streams."""
    env_ss, weight_ss = np.random.SeedSequence(int(seed)).spawn(2)
    return int(env_ss.generate_state(1)[0]), int(weight_ss.generate_state(1)[0])


def run_episode(env: gym.Env, policy: Policy, seed: int, max_steps: int | None = None,
                on_step=None) -> tuple[float, int]:
    """Play one episode; returns (return, steps). `on_step(obs, action, reward)` is called after every step."""
    env_seed, weight_seed = episode_seeds(seed)
    policy.reset(weight_seed)
    obs, _ = env.reset(seed=env_seed)
    total, steps = 0.0, 0
    while True:
        action = policy.act(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        steps += 1
        if on_step is not None:
            on_step(obs, action, reward)
        if terminated or truncated or (max_steps is not None and steps >= max_steps):
            return total, steps


class AgentProblem:
    """The fitness problem: mean episode return of a policy with the given parameters.

    Args:
        env_id: a Gymnasium id or alias (see `envs.make`).
        agent: the AgentConfig.
        env_options: keyword options of `envs.make` (e.g. {"neg_reward_limit": 20}).
        morphologies: for the quadruped, a list of morphology names; the fitness is the mean
            over all of them (every seed is played on every morphology).
        coeff_penalty: subtract coeff_penalty * mean(Policy.penalised(params) ** 2) from the
            fitness (the reference: 0.01 on the plasticity coefficients); 0 turns it off.
        centre_init, centre_init_scale: the distribution of `initial_params` (see
            `hebbian.config.EvolutionConfig`).
        encoder_options: keyword options of the encoder (a pretrained one's checksum).

    Picklable: environments and networks are built lazily in the process that evaluates.
    """

    def __init__(self, env_id: str, agent: AgentConfig = AgentConfig(), env_options: dict | None = None,
                 morphologies: list[str] | None = None, coeff_penalty: float = EvolutionConfig.coeff_penalty,
                 centre_init: str = EvolutionConfig.centre_init,
                 centre_init_scale: float = EvolutionConfig.centre_init_scale, encoder_options: dict | None = None):
        self.env_id = env_id
        self.agent = agent
        self.encoder_options = dict(encoder_options or {})
        self.env_options = dict(env_options or {})
        self.morphologies = list(morphologies) if morphologies else None
        self.coeff_penalty = float(coeff_penalty)
        self.centre_init, self.centre_init_scale = centre_init, float(centre_init_scale)
        self._envs = None
        self._policy = None
        self.num_params = self.policy.num_params
        if centre_init == "torch-default":
            parts = {"encoder": self.policy.encoder, "network": self.policy.network}
            for name, _ in self.policy.spec.parts:  # say so now, not when evolution starts
                if not hasattr(parts[name], "initial_params"):
                    raise ValueError(f"centre_init='torch-default' needs a PyTorch default initialisation for every "
                                     f"part, and the {name} ({type(parts[name]).__name__}) has none; use normal or "
                                     "uniform")
        elif centre_init not in ("normal", "uniform"):
            raise ValueError(f"unknown centre_init {centre_init!r}; choose normal, uniform or torch-default")

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_envs"] = None
        state["_policy"] = None
        return state

    @property
    def envs(self) -> list[gym.Env]:
        if self._envs is None:
            if self.morphologies:
                self._envs = envs.make_many(self.env_id, self.morphologies, **self.env_options)
            else:
                self._envs = [envs.make(self.env_id, **self.env_options)]
        return self._envs

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            env = self.envs[0]
            self._policy = Policy(self.agent, env.observation_space, env.action_space, self.env_id,
                                  encoder_options=self.encoder_options)
        return self._policy

    def initial_params(self, seed: int) -> np.ndarray:
        """Starting centre of evolution, float32 (num_params,), drawn from `seed`.

        centre_init "normal": N(0, s^2) for every parameter (the reference's torch.randn for
        the coefficients and the CNN's weights, s = 1); "uniform": U[-s, s]; "torch-default":
        each part's `initial_params(seed)` (PyTorch's default layer initialisation, which
        the attention agent's encoder and LSTM have and the Hebbian coefficients do not).
        """
        rng = np.random.default_rng(seed)
        s = np.float32(self.centre_init_scale)
        if self.centre_init == "normal":
            return rng.standard_normal(self.num_params, dtype=np.float32) * s
        if self.centre_init == "uniform":
            return (rng.random(self.num_params, dtype=np.float32) * 2 - 1) * s
        policy = self.policy  # torch-default: every part has its own initialiser (checked in __init__)
        parts = {"encoder": policy.encoder, "network": policy.network}
        flat = np.empty(self.num_params, np.float32)
        views = policy.spec.split(flat)
        for (name, _), seq in zip(policy.spec.parts, np.random.SeedSequence(seed).spawn(len(policy.spec.parts))):
            views[name][:] = parts[name].initial_params(int(seq.generate_state(1)[0]))
        return flat

    def evaluate(self, params: np.ndarray, seeds) -> tuple[float, int, tuple[float, ...]]:
        """Mean return over one episode per (seed, morphology), minus the penalty; steps; returns."""
        params = np.asarray(params, dtype=np.float32)
        policy = self.policy
        policy.set_params(params)
        returns, steps = [], 0
        for seed in seeds:
            for env in self.envs:
                ret, n = run_episode(env, policy, seed)
                returns.append(ret)
                steps += n
        fitness = float(np.mean(returns))
        if self.coeff_penalty:
            fitness -= self.coeff_penalty * float(np.mean(np.square(policy.penalised(params), dtype=np.float64)))
        return fitness, steps, tuple(returns)

    def close(self) -> None:
        for env in self._envs or []:
            env.close()
        self._envs = None
