"""Bad input and faults at the command line: one clear line, the right exit status, no hang.

Real subprocesses of scripts/evolve.py and scripts/submit.py, real environments, a real
local Ray. What each class of fault must give (issue 16): one line on stderr saying what is
wrong and what to do, exit status 2 for a usage error and 1 for a run that broke, never a
traceback, nothing already saved lost, and no command that waits for minutes.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EVOLVE = ROOT / "scripts" / "evolve.py"
SMALL = ["--popsize", "4", "--hidden", "4", "--generations", "2", "--eval-episodes", "1", "--quiet"]


def run(*args, script=EVOLVE, timeout=300, env=None):
    environ = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=environ)


def one_line_error(proc, status):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == status, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


# -- values that pass a parser but are not numbers ---------------------------------------------
@pytest.mark.parametrize("args", [["--lr", "inf"], ["--init-scale", "inf"], ["--sigma", "nan"],
                                  ["--coeff-penalty", "nan"], ["--centre-init-scale=-inf"]])
def test_non_finite_numbers_are_refused(tmp_path, args):
    line = one_line_error(run("CartPole-v1", *args, "--run-dir", tmp_path / "run"), 2)
    assert "finite number" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args", [["--popsize", "abc"], ["--strategy", "adam"], ["--bogus"]])
def test_argument_errors_are_one_line(args):
    line = one_line_error(run("CartPole-v1", *args), 2)
    assert "see --help" in line


# -- untyped TOML -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('normalize = "no"\n', "normalize must be true or false, got 'no'"),
        ("hidden = 16\n", "hidden must be a list of whole numbers"),
        ('sigma = "0.1"\n', "sigma must be a finite number"),
        ('env_options = "x"\n', "env_options must be a table"),
        ("popsize = 2.5\n", "popsize must be a whole number"),
        ("sigmaa = 0.1\n", "unknown setting 'sigmaa'"),
        ("[agent]\nsigma = 0.1\n", "unknown agent setting(s) sigma"),
        ("stdev_lr = 0.1\n", "stdev_lr does not apply to strategy openai-es"),
        ("popsize = 6\npopsize = 8\n", "not valid TOML"),
    ],
)
def test_toml_values_are_type_checked(tmp_path, toml, message):
    path = tmp_path / "run.toml"
    path.write_text(toml)
    line = one_line_error(run("CartPole-v1", "--config", path, "--run-dir", tmp_path / "run"), 2)
    assert message in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("args", "message"), [(["--preset", "nope"], "no preset 'nope'"),
                                               (["--strategy", "cma", "--lr", "0.1"], "lr does not apply to strategy cma")])
def test_settings_that_do_not_fit_the_task_or_strategy(args, message):
    assert message in one_line_error(run("CartPole-v1", *args), 2)


@pytest.mark.parametrize("target", ["folder", "missing"])
def test_config_that_is_not_a_file(tmp_path, target):
    path = tmp_path if target == "folder" else tmp_path / "nope.toml"
    line = one_line_error(run("CartPole-v1", "--config", path), 2)
    assert ("is a folder" if target == "folder" else "does not exist") in line


# -- run folders --------------------------------------------------------------------------------
def test_resume_with_another_run_dir_is_refused(tmp_path):
    first = tmp_path / "first"
    assert run("CartPole-v1", *SMALL, "--backend", "serial", "--run-dir", first).returncode == 0
    line = one_line_error(run("--resume", first, "--run-dir", tmp_path / "other"), 2)
    assert "--run-dir" in line and not (tmp_path / "other").exists()


# -- a run that breaks: NaN fitness ---------------------------------------------------------------
NAN_ENV = textwrap.dedent("""
    import runpy, sys
    import gymnasium as gym

    class NaNReward(gym.Wrapper):
        # CartPole whose rewards turn NaN from the third episode this process plays on.
        episodes = 0
        def reset(self, *, seed=None, options=None):
            NaNReward.episodes += 1
            return self.env.reset(seed=seed, options=options)
        def step(self, action):
            obs, r, term, trunc, info = self.env.step(action)
            return obs, (float("nan") if NaNReward.episodes > 10 else r), term, trunc, info

    gym.register("NaNCartPole-v0", entry_point=lambda **kw: NaNReward(gym.make("CartPole-v1", **kw)),
                 disable_env_checker=True)
    sys.argv = ["evolve.py", *sys.argv[1:]]
    sys.path.insert(0, {scripts!r})  # as `python scripts/evolve.py` would: its folder first
    runpy.run_path({evolve!r}, run_name="__main__")
""")


def test_nan_fitness_is_one_line_and_the_last_checkpoint_resumes(tmp_path):
    script = tmp_path / "nan_evolve.py"
    script.write_text(NAN_ENV.format(evolve=str(EVOLVE), scripts=str(EVOLVE.parent)))
    folder = tmp_path / "run"
    proc = run("NaNCartPole-v0", "--popsize", "4", "--hidden", "4", "--generations", "6", "--eval-every", "0",
               "--eval-episodes", "1", "--backend", "serial", "--quiet", "--run-dir", folder, script=script)
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("gen ")]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "nan" in lines[0].lower() and str(folder) in lines[0]
    kept = sorted((folder / "checkpoints").glob("gen-*.npz"))
    assert kept, "the generations before the NaN are saved"
    rows = (folder / "progress.csv").read_text().splitlines()
    assert len(rows) - 1 == int(kept[-1].stem.split("-")[1])  # one row per saved generation


# -- a run stopped from outside: SIGTERM ---------------------------------------------------------
def test_sigterm_stops_a_ray_run_with_one_line_and_it_resumes(tmp_path):
    """`kill` (or a batch system's stop) ends a run on a local Ray as Ctrl-C does: exit 143,
    one line saying how to continue, no stack dump from Ray's C++ handler, the folder resumes."""
    folder = tmp_path / "run"
    args = ["CartPole-v1", "--popsize", "4", "--hidden", "4", "--generations", "500", "--eval-every", "0",
            "--workers", "1", "--quiet", "--run-dir", folder]
    environ = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, str(EVOLVE), *map(str, args)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT, env=environ)
    try:
        deadline = time.monotonic() + 120
        while len(list((folder / "checkpoints").glob("gen-*.json"))) < 2:
            assert child.poll() is None and time.monotonic() < deadline, "the run ended or stalled early"
            time.sleep(0.05)
        child.terminate()  # SIGTERM
        _, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    lines = [line for line in stderr.strip().splitlines()
             if line and not line.startswith("gen ") and "Started a local Ray" not in line]
    assert child.returncode == 143, (child.returncode, stderr)
    assert len(lines) == 1 and lines[0].startswith("terminated; continue with:"), stderr
    assert "SIGTERM received" not in stderr and "Traceback" not in stderr
    done = int(max((folder / "checkpoints").glob("gen-*.json")).stem.split("-")[1])
    assert 2 <= done < 500
    resumed = run("--resume", folder, "--generations", str(done + 2), "--backend", "serial")
    assert resumed.returncode == 0, resumed.stderr
    assert len((folder / "progress.csv").read_text().splitlines()) - 1 == done + 2


COMMAND_CHILD = textwrap.dedent("""
    import time
    from hebbian.cli import OneLineParser, run_command

    def body():
        print("ready", flush=True)
        time.sleep(60)
        return 0

    raise SystemExit(run_command(OneLineParser(prog="work.py"), body))
""")


def test_sigterm_ends_every_command_with_one_line():
    """The other scripts run through hebbian.cli.run_command: SIGTERM there is exit 143 and one
    line too (a real process, signalled while its body runs)."""
    child = subprocess.Popen([sys.executable, "-c", COMMAND_CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == "ready"
        child.terminate()
        _, stderr = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 143 and stderr.strip() == "work.py: terminated", (child.returncode, stderr)


# -- hangs ------------------------------------------------------------------------------------------
def test_more_local_workers_than_cpus_fails_at_once(tmp_path):
    start = time.monotonic()
    line = one_line_error(run("CartPole-v1", *SMALL, "--workers", "1000", "--run-dir", tmp_path / "run"), 2)
    assert "1000 workers" in line and f"{os.cpu_count()} CPUs" in line
    assert time.monotonic() - start < 60


def test_unreachable_ray_address_fails_within_seconds(tmp_path):
    start = time.monotonic()
    line = one_line_error(run("CartPole-v1", *SMALL, "--ray-address", f"127.0.0.1:{closed_port()}",
                              "--run-dir", tmp_path / "run"), 2)
    assert "cannot reach the Ray cluster" in line
    assert time.monotonic() - start < 60


def test_invalid_job_id_is_refused_before_anything_is_sent(tmp_path):
    # Nothing listens at the address: the id must be refused before a connection is tried.
    proc = run("--address", f"http://127.0.0.1:{closed_port()}", "--job-id", "my job; rm -rf ~", "--",
               "CartPole-v1", script=ROOT / "scripts" / "submit.py")
    line = one_line_error(proc, 2)
    assert "--job-id must be" in line


# -- crashes deep inside ------------------------------------------------------------------------------
def test_a_network_too_large_for_memory_is_one_line(tmp_path):
    line = one_line_error(run("CartPole-v1", "--hidden", "65536", "65536", "--backend", "serial",
                              "--run-dir", tmp_path / "run"), 2)
    assert "GiB" in line and "--hidden" in line and not (tmp_path / "run").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--env-option", "max_episode_steps=abc"], "cannot build the task with these options"),
    (["--strategy", "cma", "--hidden", "512", "512"], "full CMA-ES with 1326080 parameters needs"),
])
def test_settings_the_task_or_strategy_refuses_deep_inside(tmp_path, args, message):
    line = one_line_error(run("CartPole-v1", "--popsize", "4", "--backend", "serial", *args,
                              "--run-dir", tmp_path / "run"), 2)
    assert message in line and not (tmp_path / "run").exists()


def test_a_starting_centre_the_agent_cannot_have_is_refused_before_the_run(tmp_path):
    line = one_line_error(run("CarRacing-v3", "--preset", "attention-agent", "--encoder", "cnn", "--backend",
                              "serial", "--run-dir", tmp_path / "run"), 2)
    assert "torch-default" in line and not (tmp_path / "run").exists()


def test_first_step_is_guarded_against_absurd_weights_and_inputs():
    from hebbian.network import HebbianNetwork

    net = HebbianNetwork((4, 8, 3), init_scale=1e30, normalize=False)
    net.set_params(np.ones(net.num_params, np.float32))
    net.reset(0)
    assert np.all(np.isfinite(net.step(np.array([1, 2, 3, 1e30], np.float32)))) and net.diverged
    net.reset(1)
    assert np.all(np.isfinite(net.step(np.array([1, np.nan, 3, 4], np.float32)))) and net.diverged


def test_car_racing_never_receives_a_nan_action():
    """Box2D on the first step of an episode, the weights drawn at an absurd scale."""
    from hebbian.agent import AgentProblem
    from hebbian.config import AgentConfig

    for network in ("hebbian", "static"):
        problem = AgentProblem("CarRacing-v3", AgentConfig(encoder="cnn", network=network, init_scale=1e30),
                               env_options={"max_episode_steps": 5}, centre_init="uniform", centre_init_scale=1e30)
        params = problem.initial_params(0)
        params[:10] = np.nan
        fitness, steps, _ = problem.evaluate(params, [3])
        assert np.isfinite(fitness) and steps == 5
        assert problem.policy.network.diverged or network == "static"  # static weights are not clipped
        # Parameters that are all NaN: the actions are still finite, and the network says so.
        problem.policy.set_params(np.full(problem.num_params, np.nan, np.float32))
        problem.policy.reset(0)
        action = problem.policy.act(np.zeros((3, 84, 84), np.float32))
        assert np.all(np.isfinite(action)) and problem.policy.network.diverged
        problem.close()


# -- what users see --------------------------------------------------------------------------------
def test_local_run_prints_no_ray_advice_and_plain_progress(tmp_path):
    proc = run("CartPole-v1", *SMALL, "--workers", "1", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    assert "RAY_AUTH_MODE" not in proc.stderr and "dashboard" not in proc.stderr.lower(), proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("gen ")]
    assert len(lines) == 2
    for line in lines:
        # numbers as people read them, time measured rather than extrapolated from the start
        assert re.search(r"best -?\d+\.\d\d mean -?\d+\.\d\d ", line), line
        assert "elapsed 0:" in line and "last gen 0:" in line and "left at that pace" in line


def test_print_config_starts_nothing(tmp_path):
    proc = run("CarRacing-v2", "--print-config", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0 and json.loads(proc.stdout)["env"]["env_id"] == "CarRacing-v2"
    assert not (tmp_path / "run").exists()


# -- the scripts and the installed package ------------------------------------------------------
SCRIPTS = sorted(p for p in (ROOT / "scripts").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_script_of_one_checkout_refuses_another_checkouts_package(tmp_path, script):
    # Another (older) clone: its own scripts/evolve.py and hebbian/, found first as an editable
    # install of it would be (here through PYTHONPATH).
    other = tmp_path / "other-clone"
    (other / "hebbian").mkdir(parents=True)
    (other / "hebbian" / "__init__.py").write_text("raise SystemExit('the other clone was imported')\n")
    (other / "scripts").mkdir()
    (other / "scripts" / "evolve.py").write_text("")
    line = one_line_error(run("--help", script=script, env={"PYTHONPATH": str(other)}), 2)
    assert str(other) in line and str(ROOT) in line and "pip install" in line


def test_a_script_run_before_any_install_says_how_to_install(tmp_path):
    # -S: no site-packages, so neither the editable install nor anything else is importable.
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-S", str(EVOLVE), "--help"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=environ)
    line = one_line_error(proc, 2)
    assert "not installed" in line and f'-e "{ROOT}"' in line


def test_the_installed_package_of_this_checkout_passes():
    assert run("--help").returncode == 0
