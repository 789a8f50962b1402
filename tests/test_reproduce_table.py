"""benchmarks/reproduce/table.py on real run folders: the README's results table comes from
progress.csv, config.json and the eval JSON of scripts/evaluate.py, never typed in."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.reproduce.table import Row, describe, markdown

REPO = Path(__file__).resolve().parent.parent


def _script(name, *args):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / name), *map(str, args)], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result


def test_rows_in_progress_then_evaluated(tmp_path):
    run = tmp_path / "run"
    _script("evolve.py", "CartPole-v1", "--backend", "serial", "--popsize", "4", "--generations", "2", "--hidden", "4",
            "--eval-every", "1", "--eval-episodes", "2", "--run-dir", run, "--quiet")
    row = Row("run", "CartPole", "Hebbian", "eval.json", "500 +/- 0")
    assert describe(Row("absent", "x", "y", "eval.json", "-"), tmp_path) is None
    entry = describe(row, tmp_path)
    progress = (run / "progress.csv").read_text().splitlines()
    assert entry["generations"] == 2 == len(progress) - 1 and entry["of"] == 2
    assert entry["env_steps"] == int(progress[-1].split(",")[2]) and entry["workers"] == 1  # the serial evaluator: this process
    assert "in progress: generation 2 of 2" in markdown([entry])

    _script("evaluate.py", run, "--episodes", "3", "--backend", "serial")
    scored = json.loads((run / "eval.json").read_text())
    entry = describe(row, tmp_path)
    assert (entry["mean"], entry["std"], entry["episodes"]) == (scored["mean"], scored["std"], 3)
    line = markdown([entry]).splitlines()[-1]
    assert f"**{scored['mean']:.0f} +/- {scored['std']:.0f}** (3)" in line and "500 +/- 0" in line

    # Scored before its end (neither its last generation nor its stop rule): the cell says so.
    partial = dict(entry, of=5, ended=False)
    assert "training stopped after generation 2 of 5" in markdown([partial])
    assert "stopped" not in markdown([entry])

    # The run went on and best.npz changed: its old score is refused, not shown.
    best = json.loads((run / "best.json").read_text())
    best["meta"]["generation"] += 1
    (run / "best.json").write_text(json.dumps(best))
    with pytest.raises(SystemExit, match="score it again"):
        describe(row, tmp_path)


def test_the_stop_rule_ends_a_run(tmp_path):
    """A run stopped by its rule (the last `evals` held-out means at or above `score`) has ended,
    though short of its generations."""
    run = tmp_path / "run"
    _script("evolve.py", "CartPole-v1", "--backend", "serial", "--popsize", "4", "--generations", "30", "--hidden", "4",
            "--eval-every", "1", "--eval-episodes", "1", "--stop-score", "0", "--stop-evals", "2", "--run-dir", run,
            "--quiet")
    entry = describe(Row("run", "CartPole", "Hebbian", "eval.json", "-"), tmp_path)
    assert entry["generations"] == 2 < entry["of"] == 30 and entry["ended"]
