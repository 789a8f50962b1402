"""Drivers: who acts while pretraining frames are collected (`dataset.collect_frames`).

A driver has `name`, `label_names` (None when it gives no labels), `reset(env, seed)` and
`act(env, frame) -> (action, label or None)`; `off_track()` (optional) ends an episode early.

    RandomDriver     uniform random actions, each held for a few steps; no labels.
    ScriptedDriver   steers towards a point ahead on the track (the car's pose and
                     `env.unwrapped.track`), with random steering perturbations so that frames
                     also show the car off the racing line. Label: the discretised steering the
                     driver *wants* in that state (left / straight / right), a function of the
                     scene in the frame, not of the perturbation.
    AgentDriver      an evolved agent (a `Policy` and its parameters); label: its discretised
                     steering.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from envs.car_racing import area_resize
from hebbian.agent import episode_seeds

STEERING_LABELS = ("left", "straight", "right")


def discretize_steering(steer: float, threshold: float = 0.3) -> int:
    """Steering in [-1, 1] -> 0 left (< -threshold), 1 straight, 2 right (> threshold)."""
    return 0 if steer < -threshold else (2 if steer > threshold else 1)


class RandomDriver:
    """Uniform random actions from the action space, each held for `hold` steps; no labels."""

    name = "random"
    label_names = None

    def __init__(self, hold: int = 8):
        self.hold = hold

    def reset(self, env, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._left, self._action = 0, None

    def act(self, env, frame: np.ndarray):
        if self._left == 0:
            space = env.action_space
            self._action = (self._rng.uniform(space.low, space.high).astype(space.dtype))
            self._left = self.hold
        self._left -= 1
        return self._action, None


class ScriptedDriver:
    """CarRacing driver that steers towards the track point `lookahead` tiles ahead.

    steer = clip(-gain * angle between the car's heading and that point, -1, 1); gas
    `throttle` below `max_speed`, else coast. Every `hold` steps, with probability `perturb`,
    the executed steering is replaced by a uniform draw in [-amplitude, amplitude] for `hold`
    steps; the label stays the driver's own steering, i.e. the correction the scene calls for.
    `off_track()` tells the collector to end the episode once the car is lost.
    """

    name = "scripted"
    label_names = STEERING_LABELS

    def __init__(self, lookahead: int = 5, gain: float = 3.0, throttle: float = 0.3, max_speed: float = 35.0,
                 perturb: float = 0.15, amplitude: float = 0.8, hold: int = 6, threshold: float = 0.3,
                 max_distance: float = 15.0):
        self.lookahead, self.gain, self.throttle, self.max_speed = lookahead, gain, throttle, max_speed
        self.perturb, self.amplitude, self.hold, self.threshold = perturb, amplitude, hold, threshold
        self.max_distance = max_distance

    def reset(self, env, seed: int) -> None:
        track = getattr(env.unwrapped, "track", None)
        if track is None:
            raise ValueError("the scripted driver needs CarRacing (env.unwrapped.track); use the random driver")
        self._xy = np.array([(t[2], t[3]) for t in track], dtype=np.float64)
        self._rng = np.random.default_rng(seed)
        self._left, self._override, self._distance = 0, None, 0.0

    def act(self, env, frame: np.ndarray):
        hull = env.unwrapped.car.hull
        position = np.array(hull.position, dtype=np.float64)
        heading = np.array(hull.GetWorldVector((0, 1)), dtype=np.float64)
        distances = np.sum((self._xy - position) ** 2, axis=1)
        nearest = int(np.argmin(distances))
        self._distance = math.sqrt(distances[nearest])
        to_target = self._xy[(nearest + self.lookahead) % len(self._xy)] - position
        # Signed angle from heading to target (positive = target to the left); CarRacing
        # steers right for positive actions, hence the minus.
        angle = math.atan2(heading[0] * to_target[1] - heading[1] * to_target[0], heading @ to_target)
        steer = float(np.clip(-self.gain * angle, -1.0, 1.0))
        speed = float(np.hypot(*hull.linearVelocity))
        if self._left == 0:
            self._left = self.hold
            self._override = self._rng.uniform(-self.amplitude, self.amplitude) if self._rng.random() < self.perturb else None
        self._left -= 1
        executed = steer if self._override is None else self._override
        action = np.array([executed, self.throttle if speed < self.max_speed else 0.0, 0.0], dtype=np.float32)
        return action, discretize_steering(steer, self.threshold)

    def off_track(self) -> bool:
        return self._distance > self.max_distance


class AgentDriver:
    """An evolved agent: `policy` (a `hebbian.agent.Policy`) with flat `params`; label: its
    discretised steering. Its observations are the collected frames area-resized to its size."""

    name = "agent"
    label_names = STEERING_LABELS

    def __init__(self, policy, params: np.ndarray, threshold: float = 0.3):
        self.policy, self.params, self.threshold = policy, np.asarray(params, dtype=np.float32), threshold
        self.policy.set_params(self.params)

    def reset(self, env, seed: int) -> None:
        self.policy.reset(episode_seeds(seed)[1])

    def act(self, env, frame: np.ndarray):
        obs = frame
        size = self.policy.encoder.obs_shape[-1] if self.policy.encoder is not None else frame.shape[-1]
        if size != frame.shape[-1]:
            obs = area_resize(torch.from_numpy(frame[None]), size)[0].numpy()
        action = np.asarray(self.policy.act(obs), dtype=np.float32)
        return action, discretize_steering(float(np.clip(action[0], -1, 1)), self.threshold)
