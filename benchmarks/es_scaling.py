"""Ray scaling and overhead of one evolution generation (LunarLander-v3, Hebbian agent), and
the driver's cost at CarRacing scale.

Run from the repository root:  python -m benchmarks.es_scaling [--generations 8] [--popsize 64] [--episodes 3]
Writes benchmarks/results/es_scaling.json.

In one process, with one local Ray of 2 CPUs, the same run (same seed, so the same
episodes) is made with 1 and with 2 workers. Reported per worker count, over the
generations but the first (actor start-up, Numba loading) and the last (it also holds the
final held-out evaluation):
    generation wall time, its speed-up (1 worker / 2 workers),
    the share of a generation spent outside `evaluator.evaluate` (ask, tell, logging,
    checkpoints),
    bytes sent to workers per generation against shipping every member's full vector.

At CarRacing scale (456,640 parameters, popsize 200, OpenAI-ES with the paper's defaults;
no environment: synthetic fitness), under "car_racing_driver":
    the noise table's size, memory and build time (once per run),
    the driver's ask + tell per generation (median and range over --driver-generations),
    a worker's materialisation of one member (`es.materialize`, the code a worker runs on
    its view of the table; median and range over 200 members),
    what one generation sends to 2 Ray workers (a problem that returns 0 at once): bytes
    in all, of them the centre, per member, and the table put in the object store.
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
from es import noise_table
from hebbian import presets

RESULTS = Path(__file__).parent / "results" / "es_scaling.json"
CAR_RACING_PARAMS = 456_640  # the paper's CarRacing agent: 91,328 plastic synapses x 5 coefficients
CAR_RACING_POPSIZE = 200


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


class Zero:
    """A problem that costs nothing: fitness 0, one step per seed (only the wire is measured)."""

    def __init__(self, num_params: int):
        self.num_params = num_params

    def initial_params(self, seed: int) -> np.ndarray:
        return np.zeros(self.num_params, np.float32)

    def evaluate(self, params, seeds):
        return 0.0, len(seeds), tuple(0.0 for _ in seeds)


def spread(seconds: list[float]) -> dict:
    """Median, min and max of timings, in milliseconds."""
    ms = np.array(seconds) * 1e3
    return {"median_ms": float(np.median(ms)), "min_ms": float(ms.min()), "max_ms": float(ms.max()), "count": len(ms)}


def car_racing_driver(generations: int, num_params: int = CAR_RACING_PARAMS, popsize: int = CAR_RACING_POPSIZE) -> dict:
    """The driver's and a worker's costs with the noise table at CarRacing scale (see the module docstring)."""
    strategy = es.OpenAIES(num_params, popsize)  # the paper's defaults: SGD, lr 0.2, sigma 0.1, standardised ranks
    rng = np.random.default_rng(0)
    state = strategy.init(rng.standard_normal(num_params).astype(np.float32), seed=0)
    table = strategy.noise_table(state)
    t0 = time.perf_counter()
    values = noise_table.build(table)
    build_s = time.perf_counter() - t0
    noise_table.adopt(table, values)
    state = strategy.tell(state, strategy.ask(state), rng.normal(size=popsize))  # compiles (or loads) the kernels
    ask_tell = []
    for _ in range(generations):
        fitness = rng.normal(size=popsize)
        t0 = time.perf_counter()
        population = strategy.ask(state)
        state = strategy.tell(state, population, fitness)
        ask_tell.append(time.perf_counter() - t0)
    population = strategy.ask(state)
    es.materialize(population.shared, population.members[0])
    materialise = []
    for member in population.members:
        t0 = time.perf_counter()
        es.materialize(population.shared, member)
        materialise.append(time.perf_counter() - t0)
    seeds = [[g] for g in population.groups]
    with es.RayEvaluator(Zero(num_params), num_workers=2) as evaluator:
        t0 = time.perf_counter()
        first = evaluator.evaluate(population.shared, population.members, seeds)  # puts the table, workers map it
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = evaluator.evaluate(population.shared, population.members, seeds)
        again_s = time.perf_counter() - t0
        table_bytes = evaluator.table_bytes
    centre_bytes = int(population.shared.centre.nbytes)
    return {"num_params": num_params, "popsize": popsize, "strategy": strategy.config(),
            "table_floats": table.size, "table_bytes": table.nbytes, "table_per_param": table.size / num_params,
            "table_build_s": build_s, "ask_tell": spread(ask_tell), "materialise": spread(materialise),
            "bytes_sent_per_generation": again.bytes_sent, "centre_bytes": centre_bytes,
            "bytes_per_member": (again.bytes_sent - centre_bytes) / popsize,
            "bytes_if_full_vectors": popsize * num_params * 4, "table_bytes_put_once": table_bytes,
            "first_generation_s_2_workers": first_s, "generation_s_2_workers": again_s,
            "bytes_sent_first_generation": first.bytes_sent}


def csv_rows(path):
    import csv
    with open(path) as f:
        yield from csv.DictReader(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=3, help="episodes per individual (the learning benchmark's 3)")
    parser.add_argument("--driver-generations", type=int, default=20,
                        help="generations of ask + tell timed at CarRacing scale")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    cfg = presets.resolve("LunarLander-v3", flag_values={"popsize": args.popsize, "seed": 0, "quiet": True})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = [run(w, cfg, args.generations, args.episodes, Path(tmp)) for w in (1, 2)]
        driver = car_racing_driver(args.driver_generations)
    finally:
        ray.shutdown()
    one, two = results
    record = {"env_id": "LunarLander-v3", "popsize": args.popsize, "episodes": args.episodes,
              "generations": args.generations,
              "runs": results, "speedup_2_workers": one["generation_s"] / two["generation_s"],
              "car_racing_driver": driver}
    for r in results:
        print(f"{r['workers']} worker(s): {r['generation_s']:.2f} s/generation, "
              f"{r['share_outside_evaluation']:.1%} outside evaluation, "
              f"{r['bytes_sent_per_generation'] / 1e3:.1f} kB sent vs {r['bytes_if_full_vectors'] / 1e6:.1f} MB "
              f"as full vectors")
    print(f"speed-up with 2 workers: {record['speedup_2_workers']:.2f}x")
    d = driver
    print(f"CarRacing scale ({d['num_params']} params, popsize {d['popsize']}, openai-es): noise table "
          f"{d['table_floats']} floats ({d['table_bytes'] / 2**20:.0f} MiB, {d['table_per_param']:.0f} per param), "
          f"built in {d['table_build_s']:.2f} s")
    for key, label in (("ask_tell", "driver ask + tell / generation"), ("materialise", "materialise / member")):
        t = d[key]
        print(f"  {label}: median {t['median_ms']:.2f} ms (range {t['min_ms']:.2f}-{t['max_ms']:.2f}, n={t['count']})")
    print(f"  sent per generation: {d['bytes_sent_per_generation'] / 1e6:.2f} MB (centre {d['centre_bytes'] / 1e6:.2f} MB, "
          f"{d['bytes_per_member']:.0f} B per member) vs {d['bytes_if_full_vectors'] / 1e6:.0f} MB as full vectors; "
          f"table put once: {d['table_bytes_put_once'] / 2**20:.0f} MiB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, record)


if __name__ == "__main__":
    main()
