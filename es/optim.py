"""Gradient-ascent optimisers for the ES centre: SGD (with optional momentum), Adam, ClipUp.

Functional and plain-data, like the strategies: `init(n) -> OptState`, then
`step(state, grad, lr) -> (update, new_state)` where `grad` is an ascent direction, float32
(n,), and `update` (float32 (n,)) is what to add to the centre. The learning rate is an
argument of `step`, not a field, because the strategies decay it.

`OptState` holds a step counter and named float32 buffers, so it serialises to npz + JSON.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import UsageError


@dataclass
class OptState:
    """Optimiser state: `step` (updates taken) and float32 (n,) buffers by name."""

    step: int = 0
    buffers: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class SGD:
    """Plain SGD (the Hebbian paper's choice) or heavy-ball momentum: m = momentum*m + g; update = lr*m."""

    momentum: float = 0.0
    name = "sgd"

    def init(self, n: int) -> OptState:
        return OptState(0, {"m": np.zeros(n, np.float32)} if self.momentum else {})

    def step(self, state: OptState, grad: np.ndarray, lr: float) -> tuple[np.ndarray, OptState]:
        grad = np.asarray(grad, np.float32)
        if not self.momentum:
            return np.float32(lr) * grad, OptState(state.step + 1, {})
        m = np.float32(self.momentum) * state.buffers["m"] + grad
        return np.float32(lr) * m, OptState(state.step + 1, {"m": m})

    def config(self) -> dict:
        return {"name": self.name, "momentum": self.momentum}


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015) with bias correction, as OpenAI-ES's reference code uses it."""

    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    name = "adam"

    def init(self, n: int) -> OptState:
        return OptState(0, {"m": np.zeros(n, np.float32), "v": np.zeros(n, np.float32)})

    def step(self, state: OptState, grad: np.ndarray, lr: float) -> tuple[np.ndarray, OptState]:
        grad = np.asarray(grad, np.float32)
        t = state.step + 1
        m = np.float32(self.beta1) * state.buffers["m"] + np.float32(1 - self.beta1) * grad
        v = np.float32(self.beta2) * state.buffers["v"] + np.float32(1 - self.beta2) * grad * grad
        # Bias correction folded into the step size (float64 scalar, then one float32 multiply).
        a = lr * np.sqrt(1 - self.beta2**t) / (1 - self.beta1**t)
        update = np.float32(a) * m / (np.sqrt(v) + np.float32(self.epsilon))
        return update.astype(np.float32, copy=False), OptState(t, {"m": m, "v": v})

    def config(self) -> dict:
        return {"name": self.name, "beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon}


@dataclass(frozen=True)
class ClipUp:
    """ClipUp (Toklu et al. 2020), PGPE's optimiser in EvoTorch and EvoJAX.

    v = momentum*v + lr * g/|g|, then v is clipped to norm `max_speed`; update = v.
    Normalising g makes the step size independent of the fitness scale; `max_speed`
    defaults to 2*lr (the paper's advice), recomputed from the current lr.
    """

    momentum: float = 0.9
    max_speed: float | None = None
    name = "clipup"

    def init(self, n: int) -> OptState:
        return OptState(0, {"v": np.zeros(n, np.float32)})

    def step(self, state: OptState, grad: np.ndarray, lr: float) -> tuple[np.ndarray, OptState]:
        grad = np.asarray(grad, np.float32)
        norm = float(np.linalg.norm(grad.astype(np.float64)))
        direction = grad / np.float32(norm) if norm > 0 else np.zeros_like(grad)
        v = np.float32(self.momentum) * state.buffers["v"] + np.float32(lr) * direction
        max_speed = 2.0 * lr if self.max_speed is None else self.max_speed
        speed = float(np.linalg.norm(v.astype(np.float64)))
        if speed > max_speed:
            v = v * np.float32(max_speed / speed)
        return v.copy(), OptState(state.step + 1, {"v": v})

    def config(self) -> dict:
        return {"name": self.name, "momentum": self.momentum, "max_speed": self.max_speed}


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "clipup": ClipUp}


def make_optimizer(name: str, **kwargs) -> SGD | Adam | ClipUp:
    """Build an optimiser by name ("sgd", "adam", "clipup") with its keyword settings."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise UsageError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}") from None
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise UsageError(f"bad settings for optimizer {name!r}: {e}") from None
