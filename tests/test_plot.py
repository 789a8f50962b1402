"""scripts/plot.py on real run folders: overlaid fitness curves, PNG / SVG, errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from es import UsageError, plotting

REPO = Path(__file__).resolve().parent.parent
PLOT = REPO / "scripts" / "plot.py"
EVOLVE = REPO / "scripts" / "evolve.py"


def _run(script, *args, timeout=120):
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=REPO, check=False,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two real CartPole runs of different lengths."""
    root = tmp_path_factory.mktemp("plot")
    paths = []
    for seed, generations in ((0, 3), (1, 4)):
        path = root / f"run{seed}"
        result = _run(EVOLVE, "CartPole-v1", "--backend", "serial", "--popsize", "8", "--generations", generations,
                      "--hidden", "8", "--eval-every", "2", "--eval-episodes", "2", "--seed", seed, "--run-dir", path,
                      "--quiet")
        assert result.returncode == 0, result.stderr
        paths.append(path)
    return paths


def test_png_in_the_first_run_folder_by_default(runs):
    from PIL import Image

    result = _run(PLOT, *runs, "--labels", "first", "second")
    assert result.returncode == 0, result.stderr
    out = runs[0] / "fitness.png"
    assert result.stdout.strip() == str(out)
    image = np.asarray(Image.open(out).convert("RGB"))
    width, height = (round(inches * plotting.FIGURE_DPI) for inches in plotting.FIGURE_SIZE_IN)
    assert image.shape == (height, width, 3) == (500, 1800, 3)  # three panels side by side
    assert image.std() > 10


def test_svg_on_request_and_out(runs, tmp_path):
    assert plotting.plot_runs([runs[1]], fmt="svg") == runs[1] / "fitness.svg"
    svg = (runs[1] / "fitness.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    out = tmp_path / "sub" / "compare.svg"
    result = _run(PLOT, *runs, "--out", out)
    assert result.returncode == 0 and result.stdout.strip() == str(out), result.stderr
    assert "<svg" in out.read_text()


def test_read_progress_columns(runs):
    columns = plotting.read_progress(runs[1])
    assert list(columns["generation"]) == [0, 1, 2, 3]
    assert np.isnan(columns["eval_mean"][0]) and np.isfinite(columns["eval_mean"][1])  # eval every 2
    assert np.all(np.diff(columns["wall_s"]) >= 0)
    assert np.all(np.diff(columns["env_steps"]) > 0)  # the env-steps panel's axis


def test_errors(runs, tmp_path):
    missing = _run(PLOT, tmp_path / "nothing")  # a real process for the exit status
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    with pytest.raises(UsageError, match="one label per run"):
        plotting.plot_runs(runs, labels=["only-one"])
    with pytest.raises(UsageError, match="does not end in .png"):
        plotting.plot_runs(runs, tmp_path / "x.svg", fmt="png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "progress.csv").write_text(
        "generation,wall_s,env_steps,fitness_mean,fitness_max,eval_mean,eval_std\n")
    with pytest.raises(UsageError, match="no generation yet"):
        plotting.plot_runs([tmp_path / "empty"])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "progress.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="not written by evolve"):
        plotting.read_progress(tmp_path / "other")
