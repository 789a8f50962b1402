"""The README's results table, built from the committed runs of this folder (issue 18).

    python -m benchmarks.reproduce.table        # prints the table; writes benchmarks/results/reproduce.json

One row per run and body scored: our mean +/- std over the evaluation's episodes (from the
run's eval JSON, written by `scripts/evaluate.py RUN --episodes 100`), the paper's figure,
the training env steps and wall time (progress.csv's last row) and the Ray workers (one
per core). A run not evaluated yet shows how far it got instead: generations done and the
centre's best held-out mean so far (10 episodes with the training early stop, so not
comparable with the paper's protocol). A run scored before its end (neither its last
generation nor its stop rule reached) says where its training stopped, and a score of a
best centre that has changed since (the run went on) is refused. Nothing here is typed in
by hand but the paper's figures.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.record import write_result  # noqa: E402
from es.plotting import read_progress  # noqa: E402
from es.run import held_out_streak  # noqa: E402
from es.run_folder import read_config  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Row:
    """One line of the table: a run folder scored on one body (eval file)."""

    folder: str
    task: str
    network: str
    eval_file: str
    paper: str


# Najarro & Risi 2020, mean +/- std over 100 episodes; the quadruped's are reported as a
# figure of distance walked per body, not as a table, so none is quoted here.
ROWS = (
    Row("car_racing_hebbian", "CarRacing", "Hebbian ABCD_lr", "eval.json", "872 +/- 11"),
    Row("car_racing_static", "CarRacing", "static", "eval.json", "711 +/- 16"),
    Row("quadruped_hebbian", "Ant, healthy", "Hebbian ABCD_lr", "eval-healthy.json", "-"),
    Row("quadruped_hebbian", "Ant, damaged-right (trained)", "Hebbian ABCD_lr", "eval-damaged-right.json", "-"),
    Row("quadruped_hebbian", "Ant, damaged-left (unseen)", "Hebbian ABCD_lr", "eval-damaged-left.json", "-"),
    Row("quadruped_static", "Ant, healthy", "static", "eval-healthy.json", "-"),
    Row("quadruped_static", "Ant, damaged-right (trained)", "static", "eval-damaged-right.json", "-"),
    Row("quadruped_static", "Ant, damaged-left (unseen)", "static", "eval-damaged-left.json", "-"),
)


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours} h {rest // 60:02d} min"


def describe(row: Row, root: Path = HERE) -> dict | None:
    """What the table says of `row`, or None when its run folder does not exist (yet)."""
    run = root / row.folder
    if not (run / "progress.csv").is_file():
        return None
    progress = read_progress(run)
    es_run = read_config(run)["es_run"]
    evals = progress["eval_mean"][~np.isnan(progress["eval_mean"])]
    stop = es_run.get("stop")
    by_stop_rule = stop is not None and held_out_streak(evals.tolist(), stop) >= stop["evals"]
    entry = {
        "folder": row.folder, "task": row.task, "network": row.network, "paper": row.paper,
        "generations": int(progress["generation"][-1]) + 1, "of": es_run["generations"],
        "env_steps": int(progress["env_steps"][-1]), "wall_s": float(progress["wall_s"][-1]),
        "workers": es_run["evaluator"].get("num_workers"),
        "best_held_out": float(evals.max()) if evals.size else None,
    }
    entry["ended"] = entry["generations"] >= entry["of"] or by_stop_rule
    scored = run / row.eval_file
    if scored.is_file():
        result = json.loads(scored.read_text())
        best = json.loads((run / "best.json").read_text())["meta"]["generation"] + 1  # best.json counts from 0
        if result.get("checkpoint") == "best" and result.get("generation") != best:
            raise SystemExit(f"{scored} scored the best centre after generation {result.get('generation')}, "
                             f"but best.npz is now generation {best}'s: score it again with scripts/evaluate.py "
                             "(the commands are in benchmarks/reproduce/README.md)")
        entry.update(mean=result["mean"], std=result["std"], episodes=result["episodes"],
                     checkpoint=result.get("label"), played=result.get("played_env_id"))
    return entry


def markdown(entries: list[dict]) -> str:
    lines = ["| task | network | ours: mean +/- std (episodes) | paper | env steps | wall time | cores |",
             "|---|---|---|---|---:|---:|---:|"]
    for e in entries:
        if "mean" in e:
            ours = f"**{e['mean']:.0f} +/- {e['std']:.0f}** ({e['episodes']})"
            if not e["ended"]:
                ours += f", training stopped after generation {e['generations']} of {e['of']}"
        else:
            best = "none yet" if e["best_held_out"] is None or not math.isfinite(e["best_held_out"]) \
                else f"{e['best_held_out']:.0f}"
            ours = f"in progress: generation {e['generations']} of {e['of']}, best held-out {best}"
        lines.append(f"| {e['task']} | {e['network']} | {ours} | {e['paper']} | {e['env_steps']:,} | "
                     f"{_duration(e['wall_s'])} | {e['workers']} |")
    return "\n".join(lines)


def main() -> int:
    entries = [e for e in (describe(row) for row in ROWS) if e is not None]
    print(markdown(entries))
    write_result(ROOT / "benchmarks" / "results" / "reproduce.json", {"rows": entries})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
