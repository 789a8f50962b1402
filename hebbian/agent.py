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

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

import envs
from hebbian.encoders import make_encoder
from hebbian.network import HebbianNetwork, StaticNetwork


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


# -- action heads: network outputs (linear) -> environment actions ------------------------
def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


class DiscreteHead:
    """Discrete(n): the index of the largest output."""

    def __init__(self, space: gym.spaces.Discrete):
        self.num_outputs = int(space.n)
        self._start = int(space.start)

    def __call__(self, y: np.ndarray):
        return int(np.argmax(y)) + self._start


class BoxHead:
    """Box: tanh scaled into [low, high] where both bounds are finite, the raw output elsewhere."""

    def __init__(self, space: gym.spaces.Box):
        self.num_outputs = int(np.prod(space.shape))
        self._shape = space.shape
        self._bounded = np.isfinite(space.low) & np.isfinite(space.high)
        self._low = np.where(self._bounded, space.low, 0).astype(np.float32).ravel()
        self._span = np.where(self._bounded, space.high - space.low, 0).astype(np.float32).ravel()
        self._bounded = self._bounded.ravel()
        self._dtype = space.dtype

    def __call__(self, y: np.ndarray):
        scaled = self._low + (np.tanh(y) + 1) * 0.5 * self._span
        return np.where(self._bounded, scaled, y).astype(self._dtype).reshape(self._shape)


class CarRacingHead:
    """CarRacing's (steer, gas, brake): tanh for steering in [-1, 1], sigmoid for gas and brake in [0, 1]."""

    num_outputs = 3

    def __call__(self, y: np.ndarray):
        return np.array([np.tanh(y[0]), _sigmoid(y[1]), _sigmoid(y[2])], dtype=np.float32)


def make_head(action_space: gym.Space, env_id: str | None = None):
    """The action head for `action_space` (CarRacing's continuous space gets its own)."""
    if isinstance(action_space, gym.spaces.Discrete):
        return DiscreteHead(action_space)
    if isinstance(action_space, gym.spaces.Box):
        if env_id is not None and envs.task_family(env_id) == "car_racing":
            return CarRacingHead()
        return BoxHead(action_space)
    raise ValueError(f"action space {action_space} is not supported; use a Discrete or Box action space")


# -- the policy --------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentConfig:
    """Everything that defines an agent apart from the environment.

    Attributes:
        network: "hebbian" (evolved plasticity rule) or "static" (evolved weights).
        hidden: hidden layer widths.
        rule, activation, init, init_scale, normalize, weight_limit: see HebbianNetwork.
        encoder: None for vector observations, or an encoder name (`hebbian.encoders`).
        encoder_options: keyword options of the encoder.
        param_init_scale: the starting centre of evolution is uniform in [-s, s].
    """

    network: str = "hebbian"
    hidden: tuple[int, ...] = (128, 64)
    rule: str = "ABCD_lr"
    activation: str = "tanh"
    init: str = "uniform"
    init_scale: float = 0.1
    normalize: bool = True
    weight_limit: float = 1e3
    encoder: str | None = None
    encoder_options: dict = field(default_factory=dict)
    param_init_scale: float = 0.1


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
    """

    def __init__(self, config: AgentConfig, observation_space: gym.Space, action_space: gym.Space,
                 env_id: str | None = None):
        self.config = config
        self.head = make_head(action_space, env_id)
        self.encoder = None
        if config.encoder:
            self.encoder = make_encoder(config.encoder, **config.encoder_options)
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
                                          weight_limit=config.weight_limit)
        elif config.network == "static":
            self.network = StaticNetwork(sizes, activation=config.activation)
        else:
            raise ValueError(f"unknown network {config.network!r}; choose 'hebbian' or 'static'")
        parts = []
        if self.encoder is not None and self.encoder.num_params:
            parts.append(("encoder", self.encoder.num_params))
        parts.append(("network", self.network.num_params))
        self.spec = ParamSpec(tuple(parts))
        self.num_params = self.spec.num_params

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
        """One step: observation -> action (the network's plasticity update included)."""
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
        coeff_penalty: subtract coeff_penalty * mean(network parameters ** 2) from the fitness
            (the paper: 0.01); 0 turns it off.

    Picklable: environments and networks are built lazily in the process that evaluates.
    """

    def __init__(self, env_id: str, agent: AgentConfig = AgentConfig(), env_options: dict | None = None,
                 morphologies: list[str] | None = None, coeff_penalty: float = 0.0):
        self.env_id = env_id
        self.agent = agent
        self.env_options = dict(env_options or {})
        self.morphologies = list(morphologies) if morphologies else None
        self.coeff_penalty = float(coeff_penalty)
        self._envs = None
        self._policy = None
        self.num_params = self.policy.num_params

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
            self._policy = Policy(self.agent, env.observation_space, env.action_space, self.env_id)
        return self._policy

    def initial_params(self, seed: int) -> np.ndarray:
        """Starting centre, float32 (num_params,): uniform in [-param_init_scale, param_init_scale],
        except an encoder part drawn by the encoder's own `initial_params(seed)` where it has one."""
        rng = np.random.default_rng(seed)
        s = self.agent.param_init_scale
        flat = (rng.random(self.num_params, dtype=np.float32) * 2 - 1) * np.float32(s)
        encoder = self.policy.encoder
        if encoder is not None and encoder.num_params and hasattr(encoder, "initial_params"):
            self.policy.spec.split(flat)["encoder"][:] = encoder.initial_params(seed)
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
            network = policy.spec.split(params)["network"]
            fitness -= self.coeff_penalty * float(np.mean(np.square(network, dtype=np.float64)))
        return fitness, steps, tuple(returns)

    def close(self) -> None:
        for env in self._envs or []:
            env.close()
        self._envs = None
