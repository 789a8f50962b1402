"""The raster alone on recorded frames: what FastCarRacing's ``render_state_frame`` costs on
the views a trained agent sees, apart from physics, Python and the agent (issue 17).

    python -m benchmarks.car_racing_frames            # prints, writes car_racing_frames.json
    python -m benchmarks.car_racing_frames --steps 300 --repeats 3

Records the raster's inputs while the trained Hebbian centre of
``benchmarks/reproduce/car_racing_hebbian`` drives one episode in the training env (and while
part 1 of ``benchmarks.car_racing_peers`` drives at random, for comparison), then times
``render_state_frame`` on each recording in ``thread_time`` (one thread; CPU time, so less
moved by other work than wall time, though not by shared caches): microseconds per frame
after the start-of-episode zoom (frames 60 on) and on the zoom's first 50 frames, the
median and range of the repeats. Also counts what a frame holds: gfx polygons and the
canvas rows they span.

Then the score text: the trained driver plays --score-episodes whole episodes, the text of
every state frame recorded (its score changes every few steps, hundreds of values an
episode), and ``FastCarRacing._text_pixels`` is timed on those texts, the episodes in turn
on one fresh env (the cache emptied first, as in a training worker's first episodes), then
all again (every text seen, as in a worker after many episodes), in microseconds per step.

Timings are measurements, never assertions.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks import car_racing_peers as peers  # sets the one-thread environment first
from benchmarks.record import write_result
from envs import car_racing_raster, car_racing_state, fast_car_racing
from envs.fast_car_racing import FastCarRacing
from hebbian.evaluate import load_run, make_problem

ZOOM_FRAMES = 50  # the start-of-episode zoom: hundreds of polygons a frame
STEADY_FROM = 60


def play(driver, steps: int) -> None:
    """``driver`` ((env, act, env seed), see car_racing_peers) plays from a reset up to
    ``steps`` steps, or to the episode's end."""
    env, act, env_seed = driver
    obs, _ = env.reset(seed=env_seed)
    for i in range(steps):
        obs, _, terminated, truncated, _ = env.step(act(obs, i))
        if terminated or truncated:
            break


def record_frames(driver, steps: int) -> list[tuple]:
    """The raster's arguments (``render_state_frame``'s) of every state frame while ``driver``
    ((env, act, env seed), see car_racing_peers) plays up to ``steps`` steps, the reset's
    frame included."""
    calls = []
    original = car_racing_state.state_frame

    def recording(*args):
        # Taken at the call: state_frame may read the car's bodies from their memory.
        ok, arguments = car_racing_state.raster_arguments(*args)
        if ok:
            calls.append(tuple(a.copy() if isinstance(a, np.ndarray) else a for a in arguments))
        return original(*args)

    car_racing_state.state_frame = recording  # fast_car_racing calls it through the module
    try:
        play(driver, steps)
    finally:
        car_racing_state.state_frame = original
    return calls


def record_score_texts(problem, params, seeds) -> list[list[str]]:
    """The score text of every state frame while the agent ``params`` plays one whole episode
    per seed in ``problem``'s env (see car_racing_peers.agent_driver)."""
    episodes = []
    for seed in seeds:
        driver = peers.agent_driver(problem, params, seed)
        fast = driver[0].unwrapped
        shown: list[str] = []
        original = fast._text_pixels

        def recording(text):
            shown.append(text)
            return original(text)

        fast._text_pixels = recording  # an instance attribute: _state_frame calls self._text_pixels
        try:
            play(driver, peers.MAX_STEPS)
        finally:
            del fast._text_pixels
        episodes.append(shown)
    return episodes


def time_score_texts(episodes: list[list[str]], passes: int = 2) -> list[dict]:
    """Microseconds per step of ``_text_pixels`` over each episode's texts, the episodes in
    turn on one fresh FastCarRacing (``thread_time``), ``passes`` times over (from the
    second on, every text has been seen: a worker after many episodes)."""
    env = FastCarRacing()
    env.reset(seed=0)
    fast_car_racing._TEXT_PIXELS.clear()  # process-wide: recording the episodes filled it
    rows = []
    for n in range(passes):
        for shown in episodes:
            start = time.thread_time()
            for text in shown:
                env._text_pixels(text)
            rows.append({"pass": n + 1, "frames": len(shown), "texts": len(set(shown)),
                         "us_per_step": (time.thread_time() - start) / len(shown) * 1e6})
    env.close()
    return rows


def polygon_rows(frame: tuple) -> int:
    """Canvas rows spanned by the frame's gfx polygons, summed (clipped to the canvas)."""
    vy, start, height = frame[1], frame[2], frame[16]
    rows = 0
    for i in range(len(start) - 1):
        y = vy[start[i]:start[i + 1]].astype(np.int64)
        rows += max(0, min(int(y.max()), height - 1) - max(int(y.min()), 0) + 1)
    return rows


def time_frames(frames: list[tuple], repeats: int) -> dict:
    """Microseconds per frame of ``render_state_frame`` over ``frames``, ``repeats`` times."""
    for frame in frames:  # compiled (or loaded from the cache) before timing
        car_racing_raster.render_state_frame(*frame)
    per_frame = []
    for _ in range(repeats):
        start = time.thread_time()
        for frame in frames:
            car_racing_raster.render_state_frame(*frame)
        per_frame.append((time.thread_time() - start) / len(frames) * 1e6)
    return {"frames": len(frames), "median_us": statistics.median(per_frame), "min_us": min(per_frame),
            "max_us": max(per_frame), "gfx_polygons": float(np.mean([len(f[2]) - 1 for f in frames])),
            "polygon_rows": float(np.mean([polygon_rows(f) for f in frames]))}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="steps recorded per driver")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1, help="episode (test episode 1 by default)")
    parser.add_argument("--score-episodes", type=int, default=3, help="episodes whose score texts are timed")
    args = parser.parse_args(argv)
    drivers = {"random driving": peers.random_driver(args.seed, args.steps)}
    run = problem = None
    if (peers.HEBBIAN_RUN / "best.npz").exists():
        run = load_run(peers.HEBBIAN_RUN)
        problem = make_problem(run, protocol=False, neg_reward_limit=None)
        drivers[f"trained ({run.label})"] = peers.agent_driver(problem, run.params, args.seed)
    else:
        print(f"{peers.HEBBIAN_RUN} has no best.npz: timing random driving's frames only")
    record = {"steps": args.steps, "repeats": args.repeats, "seed": args.seed, "drivers": {}}
    for name, driver in drivers.items():
        frames = record_frames(driver, args.steps)
        parts = {"steady": time_frames(frames[STEADY_FROM:], args.repeats),
                 "zoom": time_frames(frames[:ZOOM_FRAMES], args.repeats)}
        record["drivers"][name] = parts
        for part, t in parts.items():
            print(f"{name}, {part} ({t['frames']} frames, {t['gfx_polygons']:.1f} gfx polygons and "
                  f"{t['polygon_rows']:,.0f} polygon rows a frame): {t['median_us']:.0f} us a frame "
                  f"({t['min_us']:.0f}-{t['max_us']:.0f})")
    if problem is not None and args.score_episodes > 0:
        seeds = range(args.seed, args.seed + args.score_episodes)
        record["score_text"] = time_score_texts(record_score_texts(problem, run.params, seeds))
        print("score text (FastCarRacing._text_pixels), trained driver, episodes in turn on one env, twice:")
        for n, row in enumerate(record["score_text"]):
            print(f"  pass {row['pass']}, episode {n % args.score_episodes + 1}: {row['frames']} frames, "
                  f"{row['texts']} texts: {row['us_per_step']:.1f} us a step")
    write_result(Path(__file__).resolve().parent / "results" / "car_racing_frames.json", record)
    return record


if __name__ == "__main__":
    main()
