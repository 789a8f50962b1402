"""The run loop: files, held-out evaluation, resume bit for bit (also after SIGKILL), bad input."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import es
from es import checkpoint as ckpt
from es_problems import NaNAt, NoisySphere, Sphere

TESTS_DIR = Path(__file__).resolve().parent


def rows(run_dir, drop=("wall_s",)):
    """progress.csv as a list of dicts, without the wall-clock column."""
    with open(Path(run_dir) / "progress.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def strategy_for(name, n=6):
    settings = {"openai-es": dict(lr=0.2, optimizer="adam"), "pgpe": dict(lr=0.1), "sep-cma": {}, "cma": {}}[name]
    return es.make_strategy(name, n, 6, 0.3, **settings)


def run(run_dir, name="openai-es", generations=6, problem=None, resume=False, **kw):
    problem = problem or NoisySphere(6)
    kw = {"episodes": 2, "seed": 5, "eval_every": 2, "eval_episodes": 3, "progress": "none", **kw}
    return es.evolve(problem, strategy_for(name, problem.num_params), es.SerialEvaluator(problem), run_dir,
                     generations=generations, resume=resume, config={"env_id": "Sphere", "note": "test"}, **kw)


def test_run_folder_contents(tmp_path):
    result = run(tmp_path / "r", generations=5, keep_checkpoints=2)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["env_id"] == "Sphere" and config["es_run"]["seed"] == 5
    assert config["es_run"]["strategy"]["name"] == "openai-es" and config["versions"]["numpy"] == np.__version__
    table = rows(tmp_path / "r", drop=())
    assert list(table[0]) == list(es.COLUMNS) and [r["generation"] for r in table] == ["0", "1", "2", "3", "4"]
    assert [bool(r["eval_mean"]) for r in table] == [False, True, False, True, True]  # every 2 and at the end
    assert all(float(r["fitness_min"]) <= float(r["fitness_mean"]) <= float(r["fitness_max"]) for r in table)
    steps = [int(r["env_steps"]) for r in table]
    assert steps[0] > 0 and all(b > a for a, b in zip(steps, steps[1:])) and steps[-1] == result.env_steps
    assert [g for g, _ in ckpt.list_checkpoints(tmp_path / "r")] == [4, 5]
    np.testing.assert_array_equal(es.load_params(tmp_path / "r", "latest"), result.centre)
    np.testing.assert_array_equal(es.load_params(tmp_path / "r", 5), result.centre)
    evals = [float(r["eval_mean"]) for r in table if r["eval_mean"]]
    assert result.best_eval_mean == max(evals) and result.final_eval_mean == evals[-1]
    best_meta = json.loads((tmp_path / "r" / "best.json").read_text())["meta"]
    assert best_meta["eval_mean"] == max(evals)
    # best.npz is the centre at the best evaluation: re-evaluating it on the held-out seeds gives its score
    best = es.load_params(tmp_path / "r", "best")
    held = [NoisySphere(6).evaluate(best, [s])[0] for s in es.seeding.held_out_seeds(5, 3)]
    assert np.mean(held) == pytest.approx(max(evals), abs=1e-12)


def test_progress_lines_mode(tmp_path, capsys):
    run(tmp_path / "r", generations=3, progress="quiet")
    lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("gen ")]
    assert len(lines) == 3 and lines[-1].startswith("gen 3/3 best") and "steps/s" in lines[-1] and "left" in lines[-1]


def test_progress_bar_mode_runs(tmp_path, capsys):
    run(tmp_path / "r", generations=2, progress="bar")
    assert "gen" in capsys.readouterr().err


def test_progress_bar_says_what_the_first_generation_waits_for(capsys):
    # Before the first generation ends there is no pace; on a fresh install the wait is
    # mostly Numba compiling, and the bar says so instead of showing nothing.
    from es.progress import ProgressReporter

    with ProgressReporter("bar", 3, 0) as bar:
        assert "first generation; kernels compile on first use" in bar._bar.tasks[0].fields["pace"]
        bar.update(0, 1.0, 0.5, None, 10.0)
        assert bar._bar.tasks[0].fields["pace"].startswith("last gen")


@pytest.mark.parametrize("name", ["openai-es", "pgpe", "sep-cma"])
def test_resume_equals_uninterrupted(tmp_path, name):
    straight = run(tmp_path / "a", name, generations=7)
    run(tmp_path / "b", name, generations=4)
    resumed = run(tmp_path / "b", name, generations=7, resume=True)
    np.testing.assert_array_equal(straight.centre, resumed.centre)
    # the 4-generation run evaluated at its end (generation 3); the 7-generation one did not
    first, second = rows(tmp_path / "a"), rows(tmp_path / "b")
    second[3]["eval_mean"] = second[3]["eval_std"] = first[3]["eval_mean"] = first[3]["eval_std"] = ""
    assert first == second


@pytest.mark.parametrize("name", ["openai-es", "pgpe"])
def test_a_run_from_before_the_noise_table_is_refused_on_resume(tmp_path, name):
    """Its noise came from per-member seeds: continuing it with table noise would silently change the stream."""
    run(tmp_path / "old", name, generations=2)
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["es_run"]["strategy"]["noise_table_size"]  # what config.json held before the table
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    before = {p: p.read_bytes() for p in (tmp_path / "old").rglob("*") if p.is_file()}
    with pytest.raises(es.UsageError, match="started by an older version without the strategy setting "
                                            "noise_table_size .its noise came from per-member seeds") as info:
        run(tmp_path / "old", name, generations=4, resume=True)
    assert "\n" not in str(info.value)
    assert {p: p.read_bytes() for p in (tmp_path / "old").rglob("*") if p.is_file()} == before  # nothing touched


def test_resume_refuses_another_noise_table_size(tmp_path):
    run(tmp_path / "r", generations=2)
    strategy = es.make_strategy("openai-es", 6, 6, 0.3, lr=0.2, optimizer="adam", noise_table_size=2**21)
    problem = NoisySphere(6)
    with pytest.raises(es.UsageError, match="strategy noise_table_size=1048576, not 2097152"):
        es.evolve(problem, strategy, es.SerialEvaluator(problem), tmp_path / "r", generations=4, episodes=2, seed=5,
                  eval_every=2, eval_episodes=3, progress="none", resume=True)


def test_resume_skips_a_damaged_newest_checkpoint(tmp_path, capsys):
    straight = run(tmp_path / "a", generations=6)
    run(tmp_path / "b", generations=6)
    newest = ckpt.checkpoint_path(tmp_path / "b", 6)
    newest.write_bytes(newest.read_bytes()[:-10])
    with pytest.raises(es.CheckpointError, match="gen-000006.npz is damaged"):
        es.load_params(tmp_path / "b", 6)
    np.testing.assert_array_equal(es.load_params(tmp_path / "b", 5), np.asarray(es.load_params(tmp_path / "b", "latest")))
    resumed = run(tmp_path / "b", generations=6, resume=True)
    assert "gen-000006.npz is damaged" in capsys.readouterr().err
    np.testing.assert_array_equal(straight.centre, resumed.centre)
    assert rows(tmp_path / "a") == rows(tmp_path / "b")


def test_resume_after_sigkill_in_a_real_subprocess(tmp_path):
    """A run killed with SIGKILL mid-generation and resumed ends exactly like an uninterrupted one."""
    script = tmp_path / "evolve_child.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(TESTS_DIR)!r})\n"
        "import es\n"
        "from es_problems import NoisySphere, Slow\n"
        "problem = Slow(NoisySphere(6), float(sys.argv[3]))\n"
        "strategy = es.make_strategy('openai-es', 6, 6, 0.3, lr=0.2, optimizer='adam')\n"
        "es.evolve(problem, strategy, es.SerialEvaluator(problem), sys.argv[1], generations=30, episodes=2, seed=5,\n"
        "          eval_every=4, eval_episodes=3, progress='none', resume=sys.argv[2] == 'resume')\n"
    )
    run_dir = tmp_path / "killed"
    child = subprocess.Popen([sys.executable, str(script), str(run_dir), "fresh", "0.01"])
    try:
        deadline = time.monotonic() + 60
        while not ckpt.checkpoint_path(run_dir, 8).with_suffix(".json").exists():
            assert child.poll() is None and time.monotonic() < deadline, "child ended or stalled before generation 8"
            time.sleep(0.01)
        time.sleep(0.03)  # land somewhere inside a later generation
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    done = max(g for g, _ in ckpt.list_checkpoints(run_dir))
    assert 8 <= done < 30
    subprocess.run([sys.executable, str(script), str(run_dir), "resume", "0"], check=True, timeout=120)
    problem = NoisySphere(6)
    strategy = es.make_strategy("openai-es", 6, 6, 0.3, lr=0.2, optimizer="adam")
    straight = es.evolve(problem, strategy, es.SerialEvaluator(problem), tmp_path / "straight", generations=30,
                         episodes=2, seed=5, eval_every=4, eval_episodes=3, progress="none")
    np.testing.assert_array_equal(es.load_params(run_dir, "latest"), straight.centre)
    np.testing.assert_array_equal(es.load_params(run_dir, "best"), es.load_params(tmp_path / "straight", "best"))
    assert rows(run_dir) == rows(tmp_path / "straight")


def test_nan_fitness_is_one_line_and_keeps_saved_state(tmp_path):
    problem = NaNAt(4, threshold=0.5)
    strategy = es.make_strategy("openai-es", 4, 4, 0.1, lr=0.5)
    with pytest.raises(es.EvaluationError, match="has fitness nan") as info:
        es.evolve(problem, strategy, es.SerialEvaluator(problem), tmp_path / "r", generations=50, progress="none")
    assert "\n" not in str(info.value)
    done = len(rows(tmp_path / "r"))
    assert done > 0 and max(g for g, _ in ckpt.list_checkpoints(tmp_path / "r")) == done
    assert es.load_params(tmp_path / "r", "latest").shape == (4,)


def test_bad_inputs_are_usage_errors(tmp_path):
    problem = Sphere(4)

    def go(run_dir, **kw):
        args = dict(generations=2, progress="none", seed=0)
        args.update(kw)
        strategy = args.pop("strategy", None) or es.make_strategy("openai-es", 4, 4, 0.1)
        return es.evolve(args.pop("problem", problem), strategy, es.SerialEvaluator(problem), run_dir, **args)

    cases = [
        (dict(generations=0), "generations must be a positive integer"),
        (dict(episodes=-1), "episodes"),
        (dict(eval_episodes=0), "eval_episodes"),
        (dict(eval_every=-2), "eval_every"),
        (dict(seed=-3), "seed"),
        (dict(progress="fancy"), "progress"),
        (dict(problem=Sphere(5)), "5 parameters"),
        (dict(config={"versions": 1}), "reserved"),
    ]
    for kwargs, message in cases:
        with pytest.raises(es.UsageError, match=message) as info:
            go(tmp_path / "new", **kwargs)
        assert "\n" not in str(info.value)
    (tmp_path / "plain").mkdir()
    with pytest.raises(es.UsageError, match="is not a run folder"):
        go(tmp_path / "plain", resume=True)
    with pytest.raises(es.UsageError, match="is not a run folder"):
        es.load_params(tmp_path / "plain")
    go(tmp_path / "done")
    with pytest.raises(es.UsageError, match="already holds a run"):
        go(tmp_path / "done")
    with pytest.raises(es.UsageError, match="seed=0, not 1; rebuild"):
        go(tmp_path / "done", resume=True, seed=1)
    with pytest.raises(es.UsageError, match="strategy=.openai-es., not .pgpe."):
        go(tmp_path / "done", resume=True, strategy=es.make_strategy("pgpe", 4, 4, 0.1))
    with pytest.raises(es.UsageError, match="strategy sigma=0.1, not 0.2"):
        go(tmp_path / "done", resume=True, strategy=es.make_strategy("openai-es", 4, 4, 0.2))
    with pytest.raises(es.UsageError, match="episodes=1, not 3"):
        go(tmp_path / "done", resume=True, episodes=3)
    with pytest.raises(es.UsageError, match="already ran 2 generations"):
        go(tmp_path / "done", resume=True, generations=1)
    for name in os.listdir(tmp_path / "done" / "checkpoints"):
        (tmp_path / "done" / "checkpoints" / name).write_text("garbage")
    with pytest.raises(es.CheckpointError, match="no usable checkpoint"):
        go(tmp_path / "done", resume=True)


def test_make_run_dir(tmp_path):
    when = dt.datetime(2026, 1, 28, 6, 42, 0, tzinfo=dt.timezone.utc)
    first = es.make_run_dir("ALE/Pong-v5", 7, root=tmp_path, now=when)
    second = es.make_run_dir("ALE/Pong-v5", 7, root=tmp_path, now=when)
    assert first == tmp_path / "ALE_Pong-v5" / "20260128T064200Z-7" and first.is_dir()
    assert second == tmp_path / "ALE_Pong-v5" / "20260128T064200Z-7-1"


def test_stop_rule_counts_evaluations_in_a_row_and_may_change_on_resume(tmp_path):
    whole = run(tmp_path / "whole", generations=12, eval_every=1)
    evals = [float(r["eval_mean"]) for r in rows(tmp_path / "whole")]
    assert not whole.stopped_early and whole.generations == 12
    score = float(np.median(evals))
    # the first generation that ends 2 evaluations in a row at or above the median
    expected = next(g for g in range(1, 12) if evals[g - 1] >= score and evals[g] >= score)
    stopped = run(tmp_path / "r", generations=12, eval_every=1, stop_score=score, stop_evals=2)
    assert stopped.stopped_early and stopped.generations == expected + 1 == len(rows(tmp_path / "r"))
    assert rows(tmp_path / "r") == rows(tmp_path / "whole")[: expected + 1]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["es_run"]["stop"] == {"score": score, "evals": 2}
    # resumed with the same rule: it is met already, no generation runs
    again = run(tmp_path / "r", generations=12, eval_every=1, stop_score=score, stop_evals=2, resume=True)
    assert again.stopped_early and again.generations == expected + 1 == len(rows(tmp_path / "r"))
    # a rule it cannot meet: the same search goes on to the end
    rest = run(tmp_path / "r", generations=12, eval_every=1, stop_score=1e9, resume=True)
    assert not rest.stopped_early and rows(tmp_path / "r") == rows(tmp_path / "whole")
    np.testing.assert_array_equal(rest.centre, whole.centre)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["es_run"]["stop"] == {"score": 1e9, "evals": 3}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "900", True])
def test_stop_rule_refuses_a_score_that_is_not_a_number(tmp_path, bad):
    with pytest.raises(es.UsageError, match="stop_score"):
        run(tmp_path / "r", generations=2, stop_score=bad)
    assert not (tmp_path / "r").exists()
