"""scripts/evolve.py as a user runs it: real subprocesses, real environments, real files."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVOLVE = [sys.executable, str(ROOT / "scripts" / "evolve.py")]
FITNESS_COLUMNS = ("generation", "env_steps", "fitness_mean", "fitness_max", "fitness_min", "fitness_std",
                   "sigma", "lr", "eval_mean", "eval_std")
# CartPole settings that solve it in well under a minute on one core: a small population
# started near zero with centred-rank steps (the paper's presets, from N(0, 1) with
# standardised ranks, are made for its tasks and population 200).
CARTPOLE = ["CartPole-v1", "--popsize", "32", "--hidden", "32", "--episodes", "2", "--quiet", "--centre-init", "uniform",
            "--centre-init-scale", "0.1", "--shaping", "centered_ranks", "--coeff-penalty", "0"]


def evolve(*args, timeout=600, check=True):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "250"}  # wide help: no words broken at hyphens
    proc = subprocess.run([*EVOLVE, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"evolve.py failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def rows(run_dir):
    with open(Path(run_dir) / "progress.csv") as f:
        return list(csv.DictReader(f))


def fitness_columns(run_dir, columns=FITNESS_COLUMNS):
    return [tuple(r[c] for c in columns) for r in rows(run_dir)]


# A run extended with --resume --generations N had its "final" held-out evaluation at its
# old last generation, so only the training columns can match a run that was never stopped.
TRAINING_COLUMNS = FITNESS_COLUMNS[:-2]


@pytest.mark.parametrize("network", ["hebbian", "static"])
def test_cartpole_is_solved(tmp_path, network):
    """The centre scores >= 475 over 100 held-out episodes (CartPole-v1's 'solved') within 40
    generations; the stop rule ends the run at the first evaluation that does (generation 10
    for the Hebbian network, 5 for the static one, with this seed), so the test costs a few
    seconds rather than 40 generations."""
    run = tmp_path / network
    out = evolve(*CARTPOLE, "--network", network, "--generations", "40", "--eval-every", "5", "--eval-episodes",
                 "100", "--stop-score", "475", "--stop-evals", "1", "--backend", "serial", "--seed", "1",
                 "--run-dir", run).stdout
    last = rows(run)[-1]
    assert float(last["eval_mean"]) >= 475, last
    assert "stopped by the stop rule" in out and len(rows(run)) < 40
    config = json.loads((run / "config.json").read_text())
    assert config["agent"]["network"] == network and config["evolution"]["eval_episodes"] == 100
    assert (run / "best.npz").exists() and any((run / "checkpoints").iterdir())


@pytest.mark.slow
def test_same_seed_same_progress_serial_and_ray_with_two_workers(tmp_path):
    # The command line's face of the determinism contract; 1 against 2 Ray workers, and
    # three strategies, are compared in process by test_es_ray.test_serial_ray1_ray2_give_identical_runs.
    common = [*CARTPOLE, "--popsize", "8", "--generations", "3", "--eval-every", "2", "--eval-episodes", "3",
              "--seed", "5"]
    evolve(*common, "--backend", "serial", "--run-dir", tmp_path / "serial")
    evolve(*common, "--backend", "ray", "--workers", "2", "--run-dir", tmp_path / "ray2")
    serial = fitness_columns(tmp_path / "serial")
    assert len(serial) == 3
    assert fitness_columns(tmp_path / "ray2") == serial


def test_help_shows_every_default():
    out = " ".join(evolve("--help").stdout.split())  # argparse wraps lines at the terminal's width
    for text in ("--popsize", "car_racing 200", "attention-agent 256", "--rule", "ABCD_lr", "--ray-address",
                 "--resume", "--config", "--eval-every", "--strategy", "--shaping", "--centre-init", "--lr-decay",
                 "openai-es 0.995", "--stdev-lr", "--weight-limit", "--print-config", "--preset"):
        assert text in out


def test_config_file_then_flags(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('popsize = 6\ngenerations = 1\nhidden = [4]\nsigma = 0.05\n[env_options]\nmax_episode_steps = 20\n')
    run = tmp_path / "run"
    evolve("CartPole-v1", "--config", toml, "--sigma", "0.2", "--backend", "serial", "--eval-episodes", "1",
           "--run-dir", run, "--quiet")
    config = json.loads((run / "config.json").read_text())
    assert config["evolution"]["popsize"] == 6 and config["agent"]["hidden"] == [4]
    assert config["evolution"]["sigma"] == 0.2
    assert config["env"]["env_options"] == {"max_episode_steps": 20}
    assert config["versions"]["numpy"]


@pytest.mark.parametrize("encoder", ["cnn", "patch-attention"])
def test_car_racing_smoke_with_pixel_encoders(tmp_path, encoder):
    run = tmp_path / encoder
    evolve("CarRacing-v2", "--encoder", encoder, "--popsize", "2", "--generations", "1", "--max-steps", "15",
           "--eval-episodes", "1", "--backend", "serial", "--run-dir", run, "--quiet")
    config = json.loads((run / "config.json").read_text())
    assert config["env"]["env_options"]["frame_size"] == (84 if encoder == "cnn" else 96)
    assert len(rows(run)) == 1


def test_resume_continues_and_refuses_changed_settings(tmp_path):
    run = tmp_path / "run"
    args = [*CARTPOLE, "--popsize", "6", "--hidden", "4", "--eval-episodes", "1", "--backend", "serial",
            "--seed", "3"]
    evolve(*args, "--generations", "2", "--run-dir", run)
    evolve("--resume", run, "--generations", "3", "--backend", "serial")
    assert [r["generation"] for r in rows(run)] == ["0", "1", "2"]
    whole = tmp_path / "whole"
    evolve(*args, "--generations", "3", "--run-dir", whole)
    assert fitness_columns(whole, TRAINING_COLUMNS) == fitness_columns(run, TRAINING_COLUMNS)
    proc = evolve("--resume", run, "--popsize", "8", check=False)
    assert proc.returncode == 2 and "keeps its settings" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["CarRacing-v9"], "CarRacing-v3"),                     # unknown id: close matches listed
        (["CartPole-v1", "--popsize", "7"], "even"),            # odd population for antithetic pairs
        (["CartPole-v1", "--generations", "0"], "generations must be a whole number >= 1"),
        (["CartPole-v1", "--hidden", "0"], "hidden must be a list of whole numbers >= 1"),
        (["CartPole-v1", "--max-steps", "-1"], "max-steps"),
        ([], "name an environment id"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args, message):
    proc = evolve(*args, "--backend", "serial", check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_resume_from_a_folder_that_is_not_a_run(tmp_path):
    proc = evolve("--resume", tmp_path, check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_damaged_checkpoint_is_reported_and_the_previous_one_is_used(tmp_path):
    run = tmp_path / "run"
    args = ["CartPole-v1", "--popsize", "4", "--hidden", "4", "--eval-episodes", "1", "--backend", "serial",
            "--quiet", "--seed", "2"]
    evolve(*args, "--generations", "2", "--run-dir", run)
    newest = sorted((run / "checkpoints").glob("*.npz"))[-1]
    newest.write_bytes(newest.read_bytes()[:-20] + b"x" * 20)
    proc = evolve("--resume", run, "--generations", "3", "--backend", "serial")
    assert newest.name in proc.stderr + proc.stdout  # the damage is named
    whole = tmp_path / "whole"
    evolve(*args, "--generations", "3", "--run-dir", whole)
    assert fitness_columns(whole, TRAINING_COLUMNS) == fitness_columns(run, TRAINING_COLUMNS)


def test_print_config_is_the_resolved_configuration():
    proc = evolve("CarRacing-v2", "--print-config", "--popsize", "10")
    cfg = json.loads(proc.stdout)
    assert set(cfg) == {"preset", "env", "agent", "evolution", "strategy_options", "execution"}
    assert cfg["evolution"]["popsize"] == 10 and cfg["strategy_options"]["shaping"] == "standardized_ranks"
    assert cfg["env"]["env_options"] == {"neg_reward_limit": 20, "frame_size": 84}
    assert cfg["strategy_options"]["stdev_lr"] is None  # PGPE's, not this strategy's


def test_a_runs_config_json_reproduces_it(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    evolve(*CARTPOLE, "--popsize", "6", "--hidden", "4", "--generations", "2", "--eval-episodes", "2",
           "--backend", "serial", "--seed", "4", "--lr", "0.05", "--shaping", "centered_ranks", "--run-dir", first)
    evolve("--config", first / "config.json", "--run-dir", second)
    assert fitness_columns(second) == fitness_columns(first)
    a, b = (json.loads((d / "config.json").read_text()) for d in (first, second))
    for key in ("preset", "env", "agent", "evolution", "strategy_options"):
        assert a[key] == b[key]


def test_resume_may_change_execution_settings_only(tmp_path):
    run = tmp_path / "run"
    evolve(*CARTPOLE, "--popsize", "4", "--hidden", "4", "--generations", "2", "--eval-episodes", "1",
           "--backend", "serial", "--keep-checkpoints", "1", "--run-dir", run)
    checkpoints = lambda: sorted(p.name for p in (run / "checkpoints").glob("*.npz"))  # noqa: E731
    assert checkpoints() == ["gen-000002.npz"]  # only the newest: a folder small enough to commit
    proc = evolve("--resume", run, "--shaping", "raw", check=False)
    assert proc.returncode == 2 and "keeps its settings" in proc.stderr
    evolve("--resume", run, "--generations", "4", "--backend", "serial", "--quiet", "--keep-checkpoints", "2")
    assert len(rows(run)) == 4 and checkpoints() == ["gen-000003.npz", "gen-000004.npz"]


def test_resume_may_evaluate_more_often(tmp_path):
    """eval_every changes on resume: the search is the same, the held-out rows follow the new period."""
    run, whole = tmp_path / "run", tmp_path / "whole"
    args = [*CARTPOLE, "--popsize", "6", "--hidden", "4", "--eval-episodes", "2", "--backend", "serial", "--seed", "5"]
    evolve(*args, "--generations", "2", "--eval-every", "3", "--run-dir", run)
    evolve("--resume", run, "--generations", "5", "--eval-every", "1", "--backend", "serial", "--quiet")
    evolve(*args, "--generations", "5", "--eval-every", "3", "--run-dir", whole)
    assert fitness_columns(run, TRAINING_COLUMNS) == fitness_columns(whole, TRAINING_COLUMNS)
    evaluated = [r["generation"] for r in rows(run) if r["eval_mean"]]
    assert evaluated == ["1", "2", "3", "4"]  # the end of the first sitting, then every generation
    assert json.loads((run / "config.json").read_text())["es_run"]["eval_every"] == 1
    evolve("--resume", run, "--generations", "8", "--backend", "serial", "--quiet")  # the new period stays:
    assert all(r["eval_mean"] for r in rows(run)[5:])  # generation 6 is not a multiple of the first period
    proc = evolve("--resume", run, "--eval-episodes", "3", check=False)  # other seeds: not comparable
    assert proc.returncode == 2 and "keeps its settings" in proc.stderr


def test_stop_rule_from_the_command_line(tmp_path):
    run = tmp_path / "run"
    args = [*CARTPOLE, "--popsize", "6", "--hidden", "4", "--eval-episodes", "2", "--backend", "serial", "--seed", "6",
            "--eval-every", "1"]
    proc = evolve(*args, "--generations", "6", "--stop-score", "0", "--stop-evals", "2", "--run-dir", run)
    assert "stopped by the stop rule: 2 held-out evaluations in a row reached 0" in proc.stdout
    assert len(rows(run)) == 2  # CartPole's returns are >= 0: the rule holds at once
    evolve("--resume", run, "--backend", "serial", "--quiet")  # the rule stays in force: nothing to run
    assert len(rows(run)) == 2
    proc = evolve("--resume", run, "--backend", "serial", "--quiet", "--stop-score", "1e9")
    assert len(rows(run)) == 6 and "stopped" not in proc.stdout
