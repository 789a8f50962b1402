"""CarRacing against its peers: env steps/s (Gymnasium, FastCarRacing, EnvPool) and training throughput.

    python -m benchmarks.car_racing_peers [--seeds 0 1 2] [--steps 1000] [--repeats 2] [--chunk 100]
                                          [--popsize 200] [--workers 2] [--skip-envs] [--skip-training]
                                          [--skip-breakdown]

1. Environment steps/s, side by side. Gymnasium's CarRacing-v3, envs.FastCarRacing and
   EnvPool's C++ CarRacing run in this one process (one core, every library held to one
   thread), on the same seeds and the same seeded random driving, stepped round-robin in
   chunks of --chunk steps, so background load hits all three alike. State-pixel
   observations (96x96x3 uint8, render_mode=None). Only step() is timed; an episode end
   (1000-step limit for all three) resets, untimed, with a new seed. Reported per env and
   as ratios FastCarRacing/EnvPool and FastCarRacing/Gymnasium, median (min-max) over
   seeds x repeats. Then, as information, the mean absolute pixel difference from
   Gymnasium's frames, same seed and actions, over the first steps: 0 for FastCarRacing
   (the same frames); EnvPool draws other tracks and frames, so its figures are for a
   different rendering of a different track. EnvPool ignores reset(seed=...) (its seeds
   are fixed when the env is made), so every seed here is a fresh EnvPool env made with it.
   EnvPool is optional (pip install -e '.[bench]'); without it its column is skipped.

2. Training throughput. One real CarRacing generation of the paper's agent (preset
   "paper": CNN + plastic 648-128-64-3 ABCD_lr, OpenAI-ES) with the early stop off
   (neg_reward_limit=None, full 1000-step episodes), --popsize members (by default the
   preset's 200: with few members per worker, the generation's last episodes leave workers
   idle and the figure measures that tail rather than the step rate) x 1 episode,
   evaluated by es.RayEvaluator on a local Ray with --workers workers. Steps/s per worker
   = env steps / evaluation wall time / workers; beside it each worker's busy share (its
   CPU time over the wall time, from /proc: what the tail and Ray's own processes leave
   it). Gymnasium's bare CarRacing-v3 (seeded random driving, no agent, this process) is
   timed just before and just after the generation; the ratio of the two tells how many
   times more env steps per second a training worker makes, agent included, than
   Gymnasium's env alone could give it.

3. Where a FastCarRacing step goes (microseconds per step, one thread, one episode per
   seed from its reset): the compiled frame (`car_racing_state.state_frame`: the road's
   cull, the car and panel placed, the raster), the Python gathering what it draws from
   (`_state_frame` less the compiled frame), the rest of the drawing call (`_render` less
   `_state_frame`), and physics with the rest of the step (the step less `_render`). The
   parts are timed by wrapping those calls, which adds well under a microsecond each.
   Three drivers: the same random driving as part 1; and, as in training (the env of the
   paper preset with the early stop off, its observation wrapper's time in the last part),
   the paper's agent with the parameters of a generation-0 member (seed 0) and with the
   committed best centre of the Hebbian CarRacing run (benchmarks/reproduce/
   car_racing_hebbian, skipped if absent), the agent's own step timed apart. What the car
   sees changes what the raster draws (a rotated road, grass patches, edges at shallow
   angles), so the agents' steps tell what a training worker's env step costs.

Writes benchmarks/results/car_racing_peers.json. Timings are measurements, never assertions.
"""
from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from gymnasium.envs.box2d.car_racing import CarRacing  # noqa: E402
from gymnasium.wrappers import TimeLimit  # noqa: E402

import es  # noqa: E402
from es.population import materialize  # noqa: E402
from benchmarks.record import write_result  # noqa: E402
from envs import car_racing_state  # noqa: E402
from envs.car_racing_audit import raster_available  # noqa: E402
from envs.fast_car_racing import FastCarRacing  # noqa: E402
from hebbian import presets  # noqa: E402
from hebbian.agent import episode_seeds  # noqa: E402
from hebbian.evaluate import load_run, make_problem  # noqa: E402

try:
    import envpool
except ImportError:
    envpool = None

RESULTS = Path(__file__).resolve().parent / "results" / "car_racing_peers.json"
MAX_STEPS = 1000  # CarRacing-v3's time limit (gymnasium.make's and EnvPool's)
NEW_EPISODE_SEED = 1000  # an episode end resets with seed + 1000
HEBBIAN_RUN = Path(__file__).resolve().parent / "reproduce" / "car_racing_hebbian"
RATIO_MEANING = ("training env steps/s per worker (agent included) / bare Gymnasium CarRacing-v3 steps/s: how many "
                 "times faster a worker trains than Gymnasium's env alone could step, with a free agent")


def random_driving(seed: int, steps: int) -> np.ndarray:
    """Seeded random driving, (steps, 3) float32: uniform steer and gas, occasional hard brake."""
    rng = np.random.default_rng(seed)
    actions = np.empty((steps, 3), dtype=np.float32)
    actions[:, 0] = rng.uniform(-1.0, 1.0, steps)
    actions[:, 1] = rng.uniform(0.0, 1.0, steps)
    actions[:, 2] = np.where(rng.uniform(size=steps) < 0.1, 0.8, 0.0)
    return actions


class GymnasiumCar:
    """Gymnasium's CarRacing (or FastCarRacing) with its 1000-step limit.

    reset(seed) -> frame; step(action) -> (frame, done); EnvPoolCar has the same face.
    """

    def __init__(self, env_class):
        self.env = TimeLimit(env_class(), MAX_STEPS)

    def reset(self, seed: int) -> np.ndarray:
        self.seed = seed
        return self.env.reset(seed=seed)[0]

    def step(self, action):
        frame, _, terminated, truncated, _ = self.env.step(action)
        return frame, terminated or truncated

    def close(self):
        self.env.close()


class EnvPoolCar:
    """EnvPool's CarRacing, one env on one thread, behind the same face.

    EnvPool fixes its seeds when the env is made and ignores reset(seed=...) (1.x warns,
    0.8 has no such argument), so reset(seed) makes a new env with that seed (about 3 ms,
    untimed). Actions must be (1, 3): EnvPool 1.2 aborts the process on a (3,) action.
    """

    def __init__(self):
        ids = envpool.list_all_envs()
        self.task_id = "CarRacing-v3" if "CarRacing-v3" in ids else "CarRacing-v2"  # 0.8 has only v2
        self.env = None

    def reset(self, seed: int) -> np.ndarray:
        self.close()
        self.seed = seed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Gymnasium's notes on EnvPool's float64 Box bounds
            self.env = envpool.make_gymnasium(self.task_id, num_envs=1, num_threads=1, seed=seed)
        return self.env.reset()[0][0]

    def step(self, action):
        frame, _, terminated, truncated, _ = self.env.step(action[None])
        return frame[0], bool(terminated[0] or truncated[0])

    def close(self):
        self.env = None  # frees the pool (EnvPool 0.8 has no close())


def make_cars() -> dict:
    """Name -> car, in the order they take turns: Gymnasium, FastCarRacing, EnvPool (if installed)."""
    cars = {"gymnasium": GymnasiumCar(CarRacing), "fast": GymnasiumCar(FastCarRacing)}
    if envpool is not None:
        cars["envpool"] = EnvPoolCar()
    return cars


def timed_steps(car, actions) -> float:
    """Seconds spent in car.step over `actions`; an episode end resets (untimed) with a new seed."""
    seconds = 0.0
    for action in actions:
        start = time.perf_counter()
        _, done = car.step(action)
        seconds += time.perf_counter() - start
        if done:
            car.reset(car.seed + NEW_EPISODE_SEED)
    return seconds


def spread(values) -> dict:
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def env_speeds(seeds, steps: int, repeats: int, chunk: int) -> dict:
    """Steps/s of every car per (repeat, seed), stepped round-robin in chunks, and the ratios."""
    for car in make_cars().values():  # untimed: loads (or compiles) FastCarRacing's Numba kernels
        car.reset(seeds[0])
        timed_steps(car, random_driving(seeds[0], 10))
        car.close()
    rows = []
    for repeat in range(repeats):
        for seed in seeds:
            cars = make_cars()
            for car in cars.values():
                car.reset(seed)
            actions = random_driving(seed, steps)
            seconds = dict.fromkeys(cars, 0.0)
            for start in range(0, steps, chunk):
                for name, car in cars.items():
                    seconds[name] += timed_steps(car, actions[start:start + chunk])
            for car in cars.values():
                car.close()
            row = {"repeat": repeat, "seed": seed, "steps": steps}
            row.update({f"{name}_steps_per_s": steps / s for name, s in seconds.items()})
            row["fast_over_gymnasium"] = seconds["gymnasium"] / seconds["fast"]
            if "envpool" in seconds:
                row["fast_over_envpool"] = seconds["envpool"] / seconds["fast"]
            rows.append(row)
    keys = [k for k in rows[0] if k.endswith("_steps_per_s") or "_over_" in k]
    return {"rows": rows, **{key: spread(row[key] for row in rows) for key in keys}}


def frame_differences(seeds, steps: int) -> list[dict]:
    """Mean |pixel difference| (0-255 scale) of each car's frames from Gymnasium's, same seed and actions.

    "reset": the first frame; "steps": frames 1..steps (fewer if an episode ends first);
    "share_differing": the share of those steps' pixel values that differ at all.
    """
    rows = []
    for seed in seeds:
        cars = make_cars()
        frames = {name: [car.reset(seed).copy()] for name, car in cars.items()}
        for action in random_driving(seed, steps):
            done = False
            for name, car in cars.items():
                frame, car_done = car.step(action)
                frames[name].append(frame.copy())
                done = done or car_done
            if done:
                break
        for car in cars.values():
            car.close()
        reference = np.array(frames.pop("gymnasium"), dtype=np.int16)
        row = {"seed": seed, "steps": len(reference) - 1}
        for name, own in frames.items():
            difference = np.abs(np.array(own, dtype=np.int16) - reference)
            row[name] = {"reset": float(difference[0].mean()), "steps": float(difference[1:].mean()),
                         "share_differing": float((difference[1:] > 0).mean())}
        rows.append(row)
    return rows


def bare_gymnasium_steps_per_s(seed: int, steps: int) -> float:
    """Gymnasium's CarRacing-v3 alone, seeded random driving, in this process."""
    car = GymnasiumCar(CarRacing)
    car.reset(seed)
    seconds = timed_steps(car, random_driving(seed, steps))
    car.close()
    return steps / seconds


def paper_generation(popsize: int | None, seed: int):
    """(config, problem, population): the first generation of the paper's CarRacing run with
    `popsize` members (None: the preset's), its training env with the early stop off (full
    1000-step episodes)."""
    flags = {"seed": seed, "env_options": {"neg_reward_limit": None}}
    if popsize is not None:
        flags["popsize"] = popsize
    cfg = presets.resolve("CarRacing-v2", flag_values=flags)
    problem = presets.problem_from_config(cfg)
    strategy = presets.strategy_from_config(cfg, problem.num_params)
    return cfg, problem, strategy.ask(strategy.init(problem.initial_params(seed), seed))


def training_throughput(popsize: int | None, workers: int, bare_steps: int, seed: int = 0) -> dict:
    """Env steps/s per worker of one generation of the paper's CarRacing agent, early stop off."""
    cfg, problem, population = paper_generation(popsize, seed)
    seeds = [es.seeding.train_episode_seeds(seed, 0, group, 1) for group in population.groups]
    with es.RayEvaluator(problem, num_workers=workers) as evaluator:
        # One member per worker first: starts the actors, ships the problem, compiles Numba.
        evaluator.evaluate(population.shared, population.members[:workers], seeds[:workers])
        bare_before = bare_gymnasium_steps_per_s(seed, bare_steps)
        pids = evaluator.worker_pids()
        cpu_before = [cpu_seconds(pid) for pid in pids]
        start = time.perf_counter()
        result = evaluator.evaluate(population.shared, population.members, seeds)
        seconds = time.perf_counter() - start
        cpu_after = [cpu_seconds(pid) for pid in pids]
        bare_after = bare_gymnasium_steps_per_s(seed, bare_steps)
    env_steps = int(result.steps.sum())
    per_worker = env_steps / seconds / workers
    bare = (bare_before + bare_after) / 2
    busy = None
    if None not in cpu_before + cpu_after:
        busy = [(after - before) / seconds for before, after in zip(cpu_before, cpu_after)]
    return {"env_id": cfg.env.env_id, "preset": cfg.preset,
            "env_options": cfg.env.env_options, "num_params": problem.num_params, "popsize": cfg.evolution.popsize,
            "episodes": 1, "workers": workers, "env_steps": env_steps, "evaluation_s": seconds,
            "worker_busy_shares": busy,
            "steps_per_s_per_worker": per_worker, "bare_gymnasium_steps_per_s_before": bare_before,
            "bare_gymnasium_steps_per_s_after": bare_after, "ratio_to_bare_gymnasium": per_worker / bare,
            "ratio_means": RATIO_MEANING}


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, seconds) process ``pid`` has used, from /proc; None where
    there is no /proc (not Linux) or the process is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def random_driver(seed: int, steps: int):
    """(env, act, env seed): FastCarRacing with its time limit, driven by part 1's random driving."""
    actions = random_driving(seed, steps)
    return GymnasiumCar(FastCarRacing).env, lambda obs, i: actions[i], seed


def agent_driver(problem, params: np.ndarray, seed: int):
    """(env, act, env seed): the problem's own env (FastCarRacing and the observation wrapper)
    and its policy with `params`, seeded as training seeds an episode named `seed`."""
    env_seed, weight_seed = episode_seeds(seed)
    policy = problem.policy
    policy.set_params(params)
    policy.reset(weight_seed)
    return problem.envs[0], lambda obs, i: policy.act(obs), env_seed


def agent_drivers() -> dict:
    """Driver name -> (problem, params) of the paper's agent in the training env, early stop off."""
    _, problem, population = paper_generation(2, 0)
    drivers = {"generation 0 member": (problem, materialize(population.shared, population.members[0]))}
    if (HEBBIAN_RUN / "best.npz").exists():
        run = load_run(HEBBIAN_RUN)
        drivers[f"trained ({run.label})"] = (make_problem(run, protocol=False, neg_reward_limit=None), run.params)
    else:
        print(f"{HEBBIAN_RUN} has no best.npz: skipping the trained driver")
    return drivers


def step_breakdown(seeds, steps: int, driver=None) -> dict:
    """Microseconds per FastCarRacing step and its parts (see part 3 of the module docstring).

    driver: None for random driving, else (problem, params) of an agent (see agent_drivers).
    """
    spent = dict.fromkeys(("step", "render", "state_frame", "frame", "agent"), 0.0)

    def timed(key, call):
        def wrapper(*args):
            start = time.perf_counter()
            try:
                return call(*args)
            finally:
                spent[key] += time.perf_counter() - start
        return wrapper

    rows = []
    original = car_racing_state.state_frame
    car_racing_state.state_frame = timed("frame", original)  # fast_car_racing calls it through the module
    try:
        for seed in seeds:
            env, act, env_seed = random_driver(seed, steps) if driver is None else agent_driver(*driver, seed)
            fast = env.unwrapped
            fast._render = timed("render", fast._render)  # instance attributes: Gymnasium's step calls self._render
            fast._state_frame = timed("state_frame", fast._state_frame)
            obs, _ = env.reset(seed=env_seed)
            for key in spent:
                spent[key] = 0.0
            count = 0
            for i in range(steps):
                start = time.perf_counter()
                action = act(obs, i)
                middle = time.perf_counter()
                obs, _, terminated, truncated, _ = env.step(action)
                spent["agent"] += middle - start
                spent["step"] += time.perf_counter() - middle
                count += 1
                if terminated or truncated:
                    break
            del fast._render, fast._state_frame  # the problem's env is used again by the next driver
            if driver is None:
                env.close()
            us = {key: value / count * 1e6 for key, value in spent.items()}
            row = {"seed": seed, "steps": count, "step_us": us["step"], "frame_us": us["frame"],
                   "preparation_us": us["state_frame"] - us["frame"],
                   "other_drawing_us": us["render"] - us["state_frame"],
                   "physics_and_gymnasium_us": us["step"] - us["render"]}
            if driver is not None:
                row["agent_us"] = us["agent"]
            rows.append(row)
    finally:
        car_racing_state.state_frame = original
    parts = [key for key in rows[0] if key.endswith("_us")]
    return {"rows": rows, **{key: spread(row[key] for row in rows) for key in parts}}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000, help="timed steps per seed and env, and of each bare Gymnasium timing")
    parser.add_argument("--repeats", type=int, default=2, help="whole env measurements, for the spread")
    parser.add_argument("--chunk", type=int, default=100, help="steps per env before the next env's turn")
    parser.add_argument("--frame-steps", type=int, default=100, help="steps compared for the frame difference")
    parser.add_argument("--popsize", type=int, default=None,
                        help="members of the timed generation (even; default: the paper preset's, 200)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Ray workers (one per core)")
    parser.add_argument("--skip-envs", action="store_true", help="skip part 1 (env steps/s)")
    parser.add_argument("--skip-training", action="store_true", help="skip part 2 (training throughput)")
    parser.add_argument("--skip-breakdown", action="store_true", help="skip part 3 (where a FastCarRacing step goes)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    record = {"benchmark": "car_racing_peers",
              "command": " ".join(["python -m benchmarks.car_racing_peers", *(sys.argv[1:] if argv is None else argv)]),
              "envpool": getattr(envpool, "__version__", None), "raster_available": raster_available()}
    if envpool is None:
        print("EnvPool not installed: pip install -e '.[bench]'; skipping its column")
    if not args.skip_envs:
        speeds = env_speeds(args.seeds, args.steps, args.repeats, args.chunk)
        record["env_steps_per_s"] = speeds
        print(f"\nenv steps/s, one process, {len(speeds['rows'])} runs of {args.steps} steps "
              f"(seeds {args.seeds} x {args.repeats} repeats), median (min-max):")
        for key in ("gymnasium_steps_per_s", "fast_steps_per_s", "envpool_steps_per_s"):
            if key in speeds:
                s = speeds[key]
                print(f"  {key[:-len('_steps_per_s')]:10s} {s['median']:8.1f} ({s['min']:.1f}-{s['max']:.1f})")
        for key, target in (("fast_over_envpool", " (target >= 2.0)"), ("fast_over_gymnasium", "")):
            if key in speeds:
                s = speeds[key]
                print(f"  {key:20s} {s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f}){target}")
        record["frame_difference"] = frame_differences(args.seeds, args.frame_steps)
        print(f"mean |pixel difference| from Gymnasium's frames (0-255), first frame / first {args.frame_steps} steps:")
        for row in record["frame_difference"]:
            cells = ", ".join(f"{name} {row[name]['reset']:.2f} / {row[name]['steps']:.2f} "
                              f"({row[name]['share_differing']:.0%} of values differ)"
                              for name in row if name not in ("seed", "steps"))
            print(f"  seed {row['seed']} ({row['steps']} steps): {cells}")
    if not args.skip_training:
        training = training_throughput(args.popsize, args.workers, args.steps)
        record["training"] = training
        print(f"\ntraining, paper's agent, early stop off: {training['env_steps']} env steps in "
              f"{training['evaluation_s']:.1f} s on {training['workers']} workers = "
              f"{training['steps_per_s_per_worker']:.1f} steps/s per worker")
        if training["worker_busy_shares"] is not None:
            shares = ", ".join(f"{share:.0%}" for share in training["worker_busy_shares"])
            print(f"workers busy (their CPU time / the generation's wall time): {shares}")
        print(f"bare Gymnasium CarRacing-v3: {training['bare_gymnasium_steps_per_s_before']:.1f} steps/s before, "
              f"{training['bare_gymnasium_steps_per_s_after']:.1f} after")
        print(f"ratio {training['ratio_to_bare_gymnasium']:.2f}x (target >= 8x) = {RATIO_MEANING}")
    if not args.skip_breakdown:
        record["fast_step_breakdown"] = step_breakdown(args.seeds, args.steps)
        drivers = agent_drivers()
        record["fast_step_breakdown_agents"] = {name: step_breakdown(args.seeds, args.steps, driver)
                                                for name, driver in drivers.items()}
        for problem, _ in drivers.values():
            problem.close()
        for name, breakdown in [("random driving", record["fast_step_breakdown"]),
                                *record["fast_step_breakdown_agents"].items()]:
            print(f"\nwhere a FastCarRacing step goes, {name}, us per step, median (min-max) over seeds:")
            for key in ("step_us", "frame_us", "preparation_us", "other_drawing_us", "physics_and_gymnasium_us",
                        "agent_us"):
                if key in breakdown:
                    b = breakdown[key]
                    print(f"  {key[:-3]:24s} {b['median']:7.1f} ({b['min']:.1f}-{b['max']:.1f})")
    write_result(args.output, record)
    return record


if __name__ == "__main__":
    main()
