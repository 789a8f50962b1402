"""scripts/submit.py against a real local Ray head with token authentication.

The head is started the way docs/cluster.md says (`ray start --head`, RAY_AUTH_MODE=token),
with three precautions for a shared machine:

* its own --temp-dir, so its address file (ray_current_cluster) does not make other
  people's `ray.init()` join this head;
* free ports for every service, so it does not collide with another Ray on the machine;
* its own token file (RAY_AUTH_TOKEN_PATH), so ~/.ray/auth_token is left alone.

It runs as `ray start --block` in a new session; teardown signals every process of that
session (Ray workers move to their own process groups, but not to another session) and
never runs `ray stop`, which would stop every Ray on the machine.
"""
from __future__ import annotations

import csv
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from es import cluster

REPO = Path(__file__).resolve().parent.parent
SUBMIT = REPO / "scripts" / "submit.py"


def _free_ports(n: int) -> list[int]:
    """`n` distinct free ports from the OS's ephemeral range (all held open while picking, so none repeats)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _worker_port_range(width: int = 200) -> tuple[int, int]:
    """A worker-port range below the ephemeral range, so it can never hold a port `_free_ports` picked
    (Ray refuses to start when a component's port falls inside the worker range)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    first = 10000 + secrets.randbelow(max(1, low - 10000 - width - 1))
    return first, first + width


def _session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is `sid`, read from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry))
    return pids


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def ray_head():
    """A local Ray head with token auth: yields (dashboard address, env for clients)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("the head fixture finds its processes through /proc (Linux)")
    temp_dir = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    token_path = Path(temp_dir) / "auth_token"
    token_path.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_path), RAY_USAGE_STATS_ENABLED="0")
    names = ("port", "dashboard-port", "ray-client-server-port", "dashboard-agent-listen-port",
             "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port", "node-manager-port",
             "object-manager-port")
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    first_worker_port, last_worker_port = _worker_port_range()
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--num-cpus=2",
               "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1", "--include-dashboard=true",
               "--disable-usage-stats", f"--temp-dir={temp_dir}", f"--min-worker-port={first_worker_port}",
               f"--max-worker-port={last_worker_port}", *(f"--{k}={v}" for k, v in ports.items())]
    log = open(Path(temp_dir) / "head.log", "w")  # noqa: SIM115 - closed in the finally below
    head = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{ports['dashboard-port']}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(address + "/api/version", timeout=2)
                break
            except urllib.error.HTTPError:  # 401: up, and asking for the token
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Ray head did not start: {(Path(temp_dir) / 'head.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield address, env
    finally:
        _signal_all(_session_pids(head.pid), signal.SIGTERM)
        deadline = time.monotonic() + 3  # a grace period to shut down cleanly, then SIGKILL
        while _session_pids(head.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        _signal_all(_session_pids(head.pid), signal.SIGKILL)
        head.wait()
        log.close()
        deadline = time.monotonic() + 10  # SIGKILLed processes take a moment to disappear
        while (left := _session_pids(head.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray head processes survived teardown: {left}"


def _submit(env, *args, timeout=150):
    return subprocess.run([sys.executable, str(SUBMIT), *args], env=env, cwd=REPO, check=False,
                          capture_output=True, text=True, timeout=timeout)


def test_submitted_evolution_succeeds_and_writes_its_run_folder(ray_head, tmp_path):
    address, env = ray_head
    run_dir = tmp_path / "cluster-run"
    result = _submit(env, "--address", address, "--follow", "--job-id", "test-cartpole", "--",
                     "CartPole-v1", "--popsize", "8", "--generations", "2", "--hidden", "8", "--episodes", "1",
                     "--eval-every", "1", "--eval-episodes", "2", "--run-dir", str(run_dir), "--quiet")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "submitted job test-cartpole" in out
    assert "job test-cartpole: SUCCEEDED" in out
    # the driver joined the head (RAY_ADDRESS) instead of starting its own Ray
    assert "Connecting to existing Ray cluster" in out or "Connected to Ray cluster" in out, out[-3000:]
    with open(run_dir / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["generation"] for r in rows] == ["0", "1"]
    assert (run_dir / "checkpoints" / "gen-000002.npz").is_file()
    assert (run_dir / "best.npz").is_file()

    status = _submit(env, "--address", address, "--status", "test-cartpole", timeout=60)
    assert status.returncode == 0 and "test-cartpole: SUCCEEDED" in status.stdout, status.stdout + status.stderr
    logs = _submit(env, "--address", address, "--logs", "test-cartpole", timeout=60)
    assert logs.returncode == 0 and "done: 2 generations" in logs.stdout


def test_errors_are_one_line_with_exit_status_2(ray_head):
    address, env = ray_head
    unknown = _submit(env, "--address", address, "--status", "no-such-job", timeout=60)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "no job 'no-such-job'" in unknown.stderr

    wrong_token = {**env, "RAY_AUTH_TOKEN": "0" * 64}  # RAY_AUTH_TOKEN wins over the token file
    denied = _submit(wrong_token, "--address", address, "--list", timeout=60)
    assert denied.returncode == 2 and denied.stderr.count("\n") == 1, denied.stderr
    assert "token" in denied.stderr

    bad_flag = _submit(env, "--address", address, "--", "CartPole-v1", "--popsize", "many", timeout=60)
    assert bad_flag.returncode == 2 and "--popsize" in bad_flag.stderr


def test_stop_ends_a_running_job(ray_head, tmp_path):
    address, env = ray_head
    result = _submit(env, "--address", address, "--job-id", "test-stop", "--", "CartPole-v1", "--backend", "serial",
                     "--popsize", "8", "--generations", "100000", "--hidden", "8", "--run-dir", str(tmp_path / "r"),
                     "--quiet", timeout=60)
    assert result.returncode == 0, result.stderr
    stopped = _submit(env, "--address", address, "--stop", "test-stop", timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    # wait in one fresh process: Ray reads RAY_AUTH_MODE when it is first imported
    waiter = subprocess.run([sys.executable, "-c", ("import sys; from es import cluster; "
                             "print(cluster.wait(cluster.connect(sys.argv[1]), 'test-stop', timeout_s=60))"), address],
                            env=env, cwd=REPO, check=False, capture_output=True, text=True, timeout=90)
    assert waiter.stdout.strip() == "STOPPED", waiter.stdout + waiter.stderr
    # ... and its processes are gone (Ray may report a job stopped while it was still pending
    # and start it all the same: cluster.stop waits for it to start first). Ray sends
    # SIGTERM, then SIGKILL after a few seconds.
    run_dir = str(tmp_path / "r")
    deadline = time.monotonic() + 30
    while (left := _processes_mentioning(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"the stopped job's processes still run: {left}"


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text``, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if text in command and state[state.rindex(")") + 2] != "Z":
                found.append(command.strip())
    return found


def test_entrypoint_keeps_home_paths_for_the_head_node():
    command = cluster.entrypoint_command("scripts/evolve.py", ["CarRacing-v2", "--run-dir", "~/hebbian-runs/job 1",
                                                               "--seed=3"], path_options=("--run-dir",))
    assert command == "python scripts/evolve.py CarRacing-v2 --run-dir \"$HOME\"/'hebbian-runs/job 1' --seed=3"
    out = subprocess.run(["bash", "-c", "printf %s " + command.split("--run-dir ")[1].split(" --seed")[0]],
                         check=False, capture_output=True, text=True, env={"HOME": "/home/u"}).stdout
    assert out == "/home/u/hebbian-runs/job 1"
    env = cluster.runtime_env(REPO)
    assert env["working_dir"] == str(REPO) and "runs/" in env["excludes"] and ".venv/" in env["excludes"]
