"""Environment speed: env steps per second on one core, random actions, for every supported task.

Runs each task in this single process (one core; BLAS held to one thread) for a fixed
wall-clock budget, resetting whenever an episode ends, and counts ``env.step`` calls per
second (resets, and the quadruped's 40 burn-in steps inside them, are part of the cost
but not counted as steps). Early stops are off so that episodes have their full length.
CarRacing is measured twice: the fast frame-identical env that training uses and
Gymnasium's own (``exact_env=True``).

Then (``--generation``, on by default) the wall time of one CarRacing evolution generation
with each of the two envs: the paper's agent (CNN + ABCD_lr 648-128-64-3) and early stop,
a population of ``--popsize`` on a local Ray with ``--workers`` workers, the same seeds
(so the same episodes) for both.

    python -m benchmarks.envs                       # all tasks, 10 s each, and the generation
    python -m benchmarks.envs --seconds 3 --tasks CarRacing LunarLander --no-generation

Writes ``benchmarks/results/envs.json``. Timings are measurements, never assertions.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from benchmarks.record import write_result  # noqa: E402

import envs  # noqa: E402


def tasks() -> dict[str, tuple[str, dict]]:
    """Task label -> (env id, options to envs.make)."""
    table = {
        "CarRacing (3x84x84)": ("CarRacing-v3", {"neg_reward_limit": None}),
        "CarRacing exact (3x84x84)": ("CarRacing-v3", {"neg_reward_limit": None, "exact_env": True}),
        "LunarLander": ("LunarLander-v3", {}),
    }
    for morphology in envs.MORPHOLOGIES:
        table[f"Ant {morphology}"] = ("AntBulletEnv-v0", {"morphology": morphology, "no_progress_patience": None})
    return table


def steps_per_second(env_id: str, options: dict, seconds: float, seed: int = 0) -> dict:
    """Random-action steps per second of ``envs.make(env_id, **options)`` over about ``seconds`` of wall time."""
    env = envs.make(env_id, **options)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    steps = episodes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            episodes += 1
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return {"env_id": env_id, "options": options, "steps": steps, "episodes_finished": episodes, "seconds": round(elapsed, 3), "steps_per_second": round(steps / elapsed, 1)}


def car_racing_generation(exact_env: bool, popsize: int, workers: int, seed: int = 0) -> dict:
    """Wall time of evaluating one CarRacing population (the paper's agent, early stop on)."""
    import es
    from hebbian import presets

    cfg = presets.resolve("CarRacing-v2", flag_values={"popsize": popsize, "seed": seed,
                                                       "env_options": {"exact_env": exact_env}})
    problem = presets.problem_from_config(cfg)
    strategy = presets.strategy_from_config(cfg, problem.num_params)
    state = strategy.init(problem.initial_params(seed), seed)
    population = strategy.ask(state)
    seeds = [es.seeding.train_episode_seeds(seed, 0, group, 1) for group in population.groups]
    with es.RayEvaluator(problem, num_workers=workers) as evaluator:
        evaluator.evaluate(population.shared, population.members[:workers], seeds[:workers])  # start actors
        start = time.perf_counter()
        result = evaluator.evaluate(population.shared, population.members, seeds)
        seconds = time.perf_counter() - start
    return {"exact_env": exact_env, "popsize": popsize, "workers": workers, "seconds": round(seconds, 2),
            "env_steps": int(result.steps.sum()), "steps_per_second": round(float(result.steps.sum()) / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="wall-clock seconds per task (default 10)")
    parser.add_argument("--tasks", nargs="*", default=None, help="only tasks whose label contains one of these words")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "envs.json")
    parser.add_argument("--no-generation", action="store_true", help="skip the CarRacing generation timing")
    parser.add_argument("--popsize", type=int, default=32, help="population of the generation timing (default 32)")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers of the generation timing (default 2)")
    args = parser.parse_args(argv)

    selected = {label: spec for label, spec in tasks().items() if args.tasks is None or any(word.lower() in label.lower() for word in args.tasks)}
    if not selected:
        parser.error(f"no task matches {args.tasks}; tasks are: {', '.join(tasks())}")

    results = {
        "benchmark": "envs",
        "seconds_per_task": args.seconds,
        "tasks": {},
    }
    for label, (env_id, options) in selected.items():
        row = steps_per_second(env_id, options, args.seconds)
        results["tasks"][label] = row
        print(f"{label:28s} {row['steps_per_second']:8.1f} steps/s", flush=True)

    fast, exact = (results["tasks"].get(f"CarRacing{x} (3x84x84)") for x in ("", " exact"))
    if fast and exact:
        results["car_racing_speedup"] = round(fast["steps_per_second"] / exact["steps_per_second"], 2)
        print(f"FastCarRacing / Gymnasium CarRacing: {results['car_racing_speedup']:.2f}x")
    if not args.no_generation:
        import ray

        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        try:
            results["car_racing_generation"] = [car_racing_generation(exact, args.popsize, args.workers)
                                                for exact in (False, True)]
        finally:
            ray.shutdown()
        for row in results["car_racing_generation"]:
            print(f"CarRacing generation, {'exact' if row['exact_env'] else 'fast'} env: {row['seconds']:.1f} s "
                  f"for {row['popsize']} individuals on {row['workers']} workers ({row['env_steps']} env steps)")

    write_result(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
