"""Picklable analytic problems for the `es` tests (they follow `es.problem.Problem`).

Fitness is maximised, so each classic minimisation benchmark is negated.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Sequence

import numpy as np

import es
from es import noise_table


class Sphere:
    """fitness = -sum((x - optimum)^2); one identical 'episode' of 1 step per seed."""

    def __init__(self, num_params: int, optimum: float = 0.0, init_scale: float = 3.0):
        self.num_params, self.optimum, self.init_scale = num_params, optimum, init_scale

    def initial_params(self, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).uniform(-self.init_scale, self.init_scale, self.num_params).astype(np.float32)

    def value(self, params: np.ndarray) -> float:
        return -float(np.sum((params.astype(np.float64) - self.optimum) ** 2))

    def evaluate(self, params: np.ndarray, seeds: Sequence[int]):
        f = self.value(params)
        return f, len(seeds), tuple(f for _ in seeds)


class Rastrigin(Sphere):
    """fitness = -(10 n + sum(x^2 - 10 cos(2 pi x))); global maximum 0 at x = 0, a local optimum near every integer point."""

    def __init__(self, num_params: int, init_scale: float = 3.0):
        super().__init__(num_params, 0.0, init_scale)

    def value(self, params: np.ndarray) -> float:
        x = params.astype(np.float64)
        return -float(10 * x.size + np.sum(x * x - 10 * np.cos(2 * np.pi * x)))


class Quadratic(Sphere):
    """fitness = -1/2 x^T A x + b^T x with A symmetric positive definite; gradient -A x + b."""

    def __init__(self, num_params: int, seed: int = 0):
        super().__init__(num_params)
        rng = np.random.default_rng(seed)
        q = rng.standard_normal((num_params, num_params))
        self.A = q @ q.T / num_params + np.eye(num_params)
        self.b = rng.standard_normal(num_params)

    def value(self, params: np.ndarray) -> float:
        x = params.astype(np.float64)
        return float(-0.5 * x @ self.A @ x + self.b @ x)

    def gradient(self, params: np.ndarray) -> np.ndarray:
        return -self.A @ params.astype(np.float64) + self.b


class NoisySphere(Sphere):
    """Each episode returns -|x|^2 plus noise drawn from its env seed, and takes 10 + seed % 7 steps.

    Fitness is the mean return, so results depend on exactly which seeds each member got:
    any slip in seed bookkeeping (pairs, workers, resume) changes the numbers.
    """

    def __init__(self, num_params: int, noise: float = 0.5):
        super().__init__(num_params)
        self.noise = noise

    def evaluate(self, params: np.ndarray, seeds: Sequence[int]):
        base = self.value(params)
        returns = tuple(base + self.noise * float(np.random.default_rng(s).standard_normal()) for s in seeds)
        return float(np.mean(returns)), int(sum(10 + s % 7 for s in seeds)), returns


class Slow:
    """Wraps a problem and sleeps `delay` seconds per evaluate (to widen kill windows)."""

    def __init__(self, inner, delay: float):
        self.inner, self.delay = inner, delay
        self.num_params = inner.num_params

    def initial_params(self, seed: int) -> np.ndarray:
        return self.inner.initial_params(seed)

    def evaluate(self, params, seeds):
        time.sleep(self.delay)
        return self.inner.evaluate(params, seeds)


class KillWorkerOnce(Slow):
    """Like Slow, but the first evaluate anywhere except the driver SIGKILLs its own process.

    A marker file makes it 'once': the retried evaluation finds the marker and runs
    normally, so the fitness is what a clean run gives.
    """

    def __init__(self, inner, marker: str | Path, delay: float = 0.0):
        super().__init__(inner, delay)
        self.marker, self.driver_pid = str(marker), os.getpid()

    def evaluate(self, params, seeds):
        if os.getpid() != self.driver_pid:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # atomic: one killer only
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(params, seeds)


class NaNAt(Sphere):
    """Returns NaN fitness for parameters whose first coordinate is above `threshold` (a buggy problem)."""

    def __init__(self, num_params: int, threshold: float):
        super().__init__(num_params, init_scale=0.1)
        self.threshold = threshold

    def evaluate(self, params, seeds):
        f, steps, returns = super().evaluate(params, seeds)
        return (float("nan") if params[0] > self.threshold else f), steps, returns


class Raises(Sphere):
    """A buggy problem whose evaluate always raises."""

    def evaluate(self, params, seeds):
        raise ValueError("boom: the simulator fell over")


class TableProbe(Sphere):
    """Reports how the evaluating process holds its noise tables, as the episode returns:
    (tables held, 1.0 if each is a read-only view of memory it does not own, i.e. Ray's
    object store, else 0.0, the process id)."""

    def evaluate(self, params, seeds):
        held = list(noise_table._loaded.values())
        mapped = all(not v.flags.writeable and not v.flags.owndata for v in held)
        return 0.0, len(seeds), (float(len(held)), float(mapped), float(os.getpid()))


class NoRoom(Sphere):
    """Fails as a node without room for the noise table does (es.ResourceError in the worker)."""

    def evaluate(self, params, seeds):
        raise es.ResourceError("Ray node 10.0.0.7 cannot hold the noise table (256 MiB) in its object store; "
                               "give every node more object store memory")
