"""Steps per second of Gymnasium's CarRacing and envs.FastCarRacing, side by side.

Both environments run in the same process, on the same seeds and the same
seeded actions, interleaved in chunks of ``chunk`` steps (reference chunk, then
fast chunk), so background load on a shared machine hits both alike and the
ratio stays meaningful even when absolute numbers wander. Only ``step()`` is
timed (``reset`` builds the same track in both). Each seed's run starts with
the start-of-episode zoom animation, as training episodes do.

    SDL_VIDEODRIVER=dummy python -m benchmarks.car_racing_speed [--seeds 0 1 2] [--steps 1000] [--repeats 2]

Writes ``benchmarks/results/car_racing_speed.json``. Never asserts timings.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import numpy as np

from benchmarks.record import write_result

RESULTS = Path(__file__).resolve().parent / "results" / "car_racing_speed.json"


def _actions(seed: int, steps: int) -> np.ndarray:
    """Seeded random driving: uniform steer and gas, occasional hard brake."""
    rng = np.random.default_rng(seed)
    actions = np.empty((steps, 3), dtype=np.float32)
    actions[:, 0] = rng.uniform(-1.0, 1.0, steps)
    actions[:, 1] = rng.uniform(0.0, 1.0, steps)
    actions[:, 2] = np.where(rng.uniform(size=steps) < 0.1, 0.8, 0.0)
    return actions


def _time_chunk(env, actions, seed_state) -> float:
    """Step ``env`` through ``actions``; reset (untimed) when an episode ends."""
    elapsed = 0.0
    for action in actions:
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        elapsed += time.perf_counter() - start
        if terminated or truncated:
            seed_state[env] += 1000
            env.reset(seed=seed_state[env])
    return elapsed


def measure(seeds=(0, 1, 2), steps: int = 1000, chunk: int = 100) -> dict:
    """Steps/s of Gymnasium's CarRacing and FastCarRacing on each seed, and the ratio.

    Returns a JSON-ready dict: per seed ``gymnasium_steps_per_s``,
    ``fast_steps_per_s`` and ``ratio``, plus the median, min and max ratio.
    """
    from gymnasium.envs.box2d.car_racing import CarRacing

    from envs.fast_car_racing import FastCarRacing, fast_car_racing_available

    if not fast_car_racing_available():
        raise RuntimeError("FastCarRacing is disabled for this gymnasium; nothing to compare")
    per_seed = []
    for seed in seeds:
        reference, fast = CarRacing(), FastCarRacing()
        seed_state = {reference: seed, fast: seed}
        reference.reset(seed=seed)
        fast.reset(seed=seed)
        actions = _actions(seed, steps)
        seconds = {"gymnasium": 0.0, "fast": 0.0}
        for start in range(0, steps, chunk):
            block = actions[start : start + chunk]
            seconds["gymnasium"] += _time_chunk(reference, block, seed_state)
            seconds["fast"] += _time_chunk(fast, block, seed_state)
        reference.close()
        fast.close()
        per_seed.append(
            {
                "seed": int(seed),
                "steps": int(steps),
                "gymnasium_steps_per_s": steps / seconds["gymnasium"],
                "fast_steps_per_s": steps / seconds["fast"],
                "ratio": seconds["gymnasium"] / seconds["fast"],
            }
        )
    ratios = [row["ratio"] for row in per_seed]
    return {
        "per_seed": per_seed,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "gymnasium_steps_per_s_median": statistics.median(
            row["gymnasium_steps_per_s"] for row in per_seed
        ),
        "fast_steps_per_s_median": statistics.median(row["fast_steps_per_s"] for row in per_seed),
    }


def _environment() -> dict:
    import gymnasium
    import numba
    import pygame

    from envs.fast_car_racing import raster_available

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gymnasium": gymnasium.__version__,
        "pygame": pygame.version.ver,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "render_mode": None,
        # State frames come from envs.car_racing_raster only with the audited
        # pygame and smoothscale's SSE2 backend; otherwise pygame draws them.
        "smoothscale_backend": pygame.transform.get_smoothscale_backend(),
        "raster_available": raster_available(),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000, help="steps per seed")
    parser.add_argument("--repeats", type=int, default=2, help="whole measurements, for the spread")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    runs = []
    for repeat in range(args.repeats):
        result = measure(args.seeds, args.steps)
        runs.append(result)
        for row in result["per_seed"]:
            print(
                f"repeat {repeat} seed {row['seed']}: gymnasium {row['gymnasium_steps_per_s']:7.1f} "
                f"steps/s, fast {row['fast_steps_per_s']:7.1f} steps/s, ratio {row['ratio']:.2f}x"
            )
    all_ratios = [row["ratio"] for run in runs for row in run["per_seed"]]
    summary = {
        "benchmark": "car_racing_speed",
        "command": "python -m benchmarks.car_racing_speed "
        + f"--seeds {' '.join(map(str, args.seeds))} --steps {args.steps} --repeats {args.repeats}",
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": _environment(),
        "runs": runs,
        "ratio_median": statistics.median(all_ratios),
        "ratio_min": min(all_ratios),
        "ratio_max": max(all_ratios),
    }
    print(
        f"ratio median {summary['ratio_median']:.2f}x "
        f"(min {summary['ratio_min']:.2f}x, max {summary['ratio_max']:.2f}x) over "
        f"{len(all_ratios)} seed runs"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.output, summary)
    return summary


if __name__ == "__main__":
    main()
