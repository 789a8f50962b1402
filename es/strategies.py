"""The strategies by name, and `make_strategy`.

The registry lives here, apart from the base class in `es.strategy`, so that imports run
one way: strategy.py <- openai_es.py, pgpe.py, cma_es.py <- strategies.py.
"""
from __future__ import annotations

from .cma_es import CMAES, SepCMAES
from .errors import UsageError
from .openai_es import OpenAIES
from .pgpe import PGPE
from .strategy import Strategy

STRATEGIES: dict[str, type[Strategy]] = {"openai-es": OpenAIES, "pgpe": PGPE, "cma": CMAES, "sep-cma": SepCMAES}
STRATEGY_NAMES = tuple(STRATEGIES)


def make_strategy(name: str, num_params: int, popsize: int, sigma: float, lr: float | None = None, **kwargs) -> Strategy:
    """Build a strategy by name.

    Args:
        name: "openai-es", "pgpe", "cma" (full CMA-ES) or "sep-cma" (diagonal CMA-ES).
        num_params: length n of the parameter vector.
        popsize: individuals per generation (even for openai-es and pgpe).
        sigma: initial noise standard deviation (in parameter units).
        lr: centre learning rate (OpenAI-ES: SGD/Adam step; PGPE: ClipUp step size);
            ignored by CMA-ES, which has no learning rate. None = the strategy's default.
        **kwargs: the strategy's other keyword settings (see each class).
    """
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise UsageError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}") from None
    if lr is not None and "lr" in cls.hyperparameters:
        kwargs["lr"] = lr
    try:
        return cls(num_params, popsize, sigma, **kwargs)
    except TypeError as e:  # an unknown keyword: say which strategy rejected it
        raise UsageError(f"bad settings for strategy {name!r}: {e}") from None
