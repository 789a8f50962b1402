"""Environment speed: env steps per second on one core, random actions, for every supported task.

Runs each task in this single process (one core; BLAS held to one thread) for a fixed
wall-clock budget, resetting whenever an episode ends, and counts ``env.step`` calls per
second (resets, and the quadruped's 40 burn-in steps inside them, are part of the cost
but not counted as steps). Early stops are off so that episodes have their full length.

    python benchmarks/envs.py                       # all tasks, 10 s each
    python benchmarks/envs.py --seconds 3 --tasks CarRacing LunarLander
    python benchmarks/envs.py --no-markdown          # JSON only

Writes ``benchmarks/results/envs.json`` and the "Environments" section of
``BENCHMARKS.md`` (between ``<!-- envs:begin -->`` and ``<!-- envs:end -->``; the rest
of the file is kept). Timings are measurements, never assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402


def tasks() -> dict[str, tuple[str, dict]]:
    """Task label -> (env id, options to envs.make)."""
    table = {
        "CarRacing (3x84x84)": ("CarRacing-v3", {"neg_reward_limit": None}),
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


def markdown(results: dict) -> str:
    lines = [
        "## Environments",
        "",
        f"Steps per second on one core, random actions (`python benchmarks/envs.py`), {results['machine']['processor'] or results['machine']['machine']}, {results['date']}.",
        "",
        "| task | id | steps/s |",
        "|---|---|---:|",
    ]
    for label, row in results["tasks"].items():
        lines.append(f"| {label} | `{row['env_id']}` | {row['steps_per_second']:.0f} |")
    return "\n".join(lines)


def write_markdown_section(path: Path, section: str) -> None:
    begin, end = "<!-- envs:begin -->", "<!-- envs:end -->"
    block = f"{begin}\n{section}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="wall-clock seconds per task (default 10)")
    parser.add_argument("--tasks", nargs="*", default=None, help="only tasks whose label contains one of these words")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "envs.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-markdown", action="store_true", help="write the JSON only")
    args = parser.parse_args(argv)

    selected = {label: spec for label, spec in tasks().items() if args.tasks is None or any(word.lower() in label.lower() for word in args.tasks)}
    if not selected:
        parser.error(f"no task matches {args.tasks}; tasks are: {', '.join(tasks())}")

    results = {
        "benchmark": "envs",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": {"machine": platform.machine(), "processor": platform.processor(), "python": platform.python_version(), "cpu_count": os.cpu_count()},
        "versions": {"gymnasium": gymnasium.__version__, "numpy": np.__version__},
        "seconds_per_task": args.seconds,
        "tasks": {},
    }
    for label, (env_id, options) in selected.items():
        row = steps_per_second(env_id, options, args.seconds)
        results["tasks"][label] = row
        print(f"{label:28s} {row['steps_per_second']:8.1f} steps/s", flush=True)

    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, args.json)
    if not args.no_markdown:
        write_markdown_section(args.markdown, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
