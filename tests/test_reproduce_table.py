"""benchmarks/reproduce/table.py on real run folders: the README's results table comes from
progress.csv, config.json and the eval JSON of scripts/evaluate.py, never typed in."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
