"""Seed bookkeeping: every random draw of a run derives from the run seed.

Each draw gets its own `numpy.random.SeedSequence(run_seed, spawn_key=(namespace, ...))`,
so a number depends only on the run seed and its (generation, member, episode) address,
never on how many workers there are, on the order results come back, or on a resume.

Namespaces (the first spawn-key word) keep the streams apart:

    TRAIN     env seeds of training episodes, keyed (generation, group); antithetic pairs
              form one group, so both members of a pair meet the same episodes.
    HELD_OUT  env seeds for evaluating the centre: one fixed list per run, so every
              evaluation of the run is on the same episodes and the curve is comparable.
    NOISE     offsets of the perturbations into the noise table, keyed (generation, pair).
    INIT      the seed passed to `Problem.initial_params`.
    STRATEGY  the seed of a strategy's own generator (pycma).
    TEST      env seeds for testing a finished run's agents (watching, the 100-episode
              protocol), apart from both the training and the held-out episodes.
    NOISE_TABLE  the run's table of standard normals (`es.noise_table`).

Env seeds are 32-bit. Training seeds are drawn in [0, 2**31) and held-out seeds in
[2**31, 2**32), so a held-out episode can never be one the run trained on.
"""
from __future__ import annotations

import numpy as np

from .errors import UsageError

TRAIN, HELD_OUT, NOISE, INIT, STRATEGY, TEST, NOISE_TABLE = 0, 1, 2, 3, 4, 5, 6
_HIGH_BIT = np.uint32(0x80000000)


def check_seed(seed: int) -> int:
    """Return `seed` as an int, or raise UsageError if it is not a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _sequence(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=check_seed(seed), spawn_key=tuple(int(k) for k in key))


def train_episode_seeds(seed: int, generation: int, group: int, episodes: int) -> list[int]:
    """Env seeds (ints in [0, 2**31)) for the `episodes` training episodes of one seed group.

    Members that share `group` (an antithetic pair) get the same list.
    """
    words = _sequence(seed, TRAIN, generation, group).generate_state(episodes, np.uint32)
    return [int(w) for w in words & ~_HIGH_BIT]


def held_out_seeds(seed: int, episodes: int) -> list[int]:
    """The run's fixed held-out env seeds (ints in [2**31, 2**32)), never used for training.

    `generate_state` is prefix-stable, so asking for more episodes extends the same list.
    """
    words = _sequence(seed, HELD_OUT).generate_state(episodes, np.uint32)
    return [int(w) for w in words | _HIGH_BIT]


def noise_offsets(seed: int, generation: int, pairs: int, span: int) -> np.ndarray:
    """Where each antithetic pair's noise starts in the noise table: int64 (pairs,), each in [0, span).

    Word k of the generation's stream is pair k's, so an offset depends only on (seed,
    generation, pair). `word % span` is uniform up to a bias below span / 2**64 (< 1e-9 for any
    table that fits in memory).
    """
    if span < 1:
        raise UsageError(f"the noise table must be longer than the parameter vector (span {span})")
    words = _sequence(seed, NOISE, generation).generate_state(pairs, np.uint64)
    return (words % np.uint64(span)).astype(np.int64)


def noise_table_sequence(seed: int) -> np.random.SeedSequence:
    """The SeedSequence of the run's noise table (`es.noise_table.build` feeds it to PCG64)."""
    return _sequence(seed, NOISE_TABLE)


def init_seed(seed: int) -> int:
    """The seed handed to `Problem.initial_params` (a 32-bit int)."""
    return int(_sequence(seed, INIT).generate_state(1, np.uint32)[0])


def strategy_seed(seed: int) -> int:
    """A positive 31-bit seed for a strategy's own generator (pycma treats 0 as 'use the clock')."""
    return int(_sequence(seed, STRATEGY).generate_state(1, np.uint32)[0] % (2**31 - 1)) + 1


def test_seeds(seed: int, episodes: int, exclude=()) -> list[int]:
    """`episodes` env seeds (ints in [2**31, 2**32)) for testing a run's agents.

    Drawn from the run seed's TEST namespace; any seed in `exclude` (the run's held-out
    evaluation seeds) is skipped. Prefix-stable: asking for more episodes extends the list,
    so watching 3 episodes plays the first three episodes of a 100-episode evaluation.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise UsageError(f"episodes must be a positive whole number, got {episodes!r}")
    excluded = {int(s) for s in exclude}
    stream = _sequence(seed, TEST)
    count = int(episodes) + len(excluded)
    while True:  # a draw may repeat or hit `exclude` (odds ~1e-7): draw a longer prefix then
        words = stream.generate_state(count, np.uint32) | _HIGH_BIT
        seeds = list(dict.fromkeys(int(w) for w in words if int(w) not in excluded))
        if len(seeds) >= episodes:
            return seeds[:episodes]
        count *= 2
