"""Ray scaling and overhead of one evolution generation (LunarLander-v3, Hebbian agent).

Run from the repository root:  python -m benchmarks.es_scaling [--generations 8] [--popsize 64] [--episodes 3]
Writes benchmarks/results/es_scaling.json.

In one process, with one local Ray of 2 CPUs, the same run (same seed, so the same
episodes) is made with 1 and with 2 workers. Reported per worker count, over the
generations but the first (actor start-up, Numba loading) and the last (it also holds the
final held-out evaluation):
    generation wall time, its speed-up (1 worker / 2 workers),
    the share of a generation spent outside `evaluator.evaluate` (ask, tell, noise
    regeneration, logging, checkpoints),
    bytes sent to workers per generation against shipping every member's full vector.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.record import write_result
import ray

import es
from hebbian import presets

RESULTS = Path(__file__).parent / "results" / "es_scaling.json"


class TimedEvaluator:
    """Wraps an evaluator and records the wall time of each `evaluate` call."""

    def __init__(self, inner):
        self.inner = inner
        self.seconds: list[float] = []

    def evaluate(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = self.inner.evaluate(*args, **kwargs)
        self.seconds.append(time.perf_counter() - t0)
        return out

    def __getattr__(self, name):
        return getattr(self.inner, name)


def run(workers: int, cfg, generations: int, episodes: int, root: Path) -> dict:
    problem = presets.problem_from_config(cfg)
    strategy = presets.strategy_from_config(cfg, problem.num_params)
    evaluator = TimedEvaluator(es.RayEvaluator(problem, num_workers=workers))
    try:
        es.evolve(problem, strategy, evaluator, root / f"w{workers}", generations=generations, episodes=episodes,
                  seed=cfg.evolution.seed, eval_every=0, eval_episodes=1, config=cfg.to_dict(), progress=False)
    finally:
        evaluator.inner.close()
    rows = list(csv_rows(root / f"w{workers}" / "progress.csv"))
    wall = np.diff([0.0] + [float(r["wall_s"]) for r in rows])
    evaluation = np.array(evaluator.seconds[:generations])  # the last call is the final held-out one
    # Steady state: not the first generation (actor start, Numba loading) nor the last (it
    # also holds the final held-out evaluation).
    steady = slice(1, generations - 1)
    bytes_sent = [int(r["bytes_sent"]) for r in rows]
    full_vectors = cfg.evolution.popsize * problem.num_params * 4
    return {"workers": workers, "generation_s": float(np.mean(wall[steady])), "generation_s_each": wall.tolist(),
            "share_outside_evaluation": float(np.mean(1 - evaluation[steady] / wall[steady])),
            "bytes_sent_per_generation": float(np.mean(bytes_sent[steady])),
            "bytes_if_full_vectors": full_vectors, "num_params": problem.num_params,
            "env_steps_per_generation": float(np.mean(np.diff([0] + [int(r["env_steps"]) for r in rows])[steady]))}


def csv_rows(path):
    import csv
    with open(path) as f:
        yield from csv.DictReader(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=3, help="episodes per individual (the learning benchmark's 3)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    cfg = presets.resolve("LunarLander-v3", flag_values={"popsize": args.popsize, "seed": 0, "quiet": True})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = [run(w, cfg, args.generations, args.episodes, Path(tmp)) for w in (1, 2)]
    finally:
        ray.shutdown()
    one, two = results
    record = {"env_id": "LunarLander-v3", "popsize": args.popsize, "episodes": args.episodes,
              "generations": args.generations,
              "runs": results, "speedup_2_workers": one["generation_s"] / two["generation_s"]}
    for r in results:
        print(f"{r['workers']} worker(s): {r['generation_s']:.2f} s/generation, "
              f"{r['share_outside_evaluation']:.1%} outside evaluation, "
              f"{r['bytes_sent_per_generation'] / 1e3:.1f} kB sent vs {r['bytes_if_full_vectors'] / 1e6:.1f} MB "
              f"as full vectors")
    print(f"speed-up with 2 workers: {record['speedup_2_workers']:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, record)


if __name__ == "__main__":
    main()
