"""Sending a run to a Ray cluster through the Ray Jobs API (`ray.job_submission`).

    client = connect("http://HEAD:8265")
    job_id = submit(client, entrypoint_command("scripts/evolve.py", ["CarRacing-v2", "--run-dir", "~/runs/x"]),
                    runtime_env(project_dir))
    status = follow(client, job_id)          # streams the logs, returns the final status

The job runs its entrypoint in a copy of `project_dir` unpacked on the head node (Ray's
`working_dir`; the copy also goes first on PYTHONPATH for the driver and every worker,
so the cluster runs the submitted code, not whatever is installed there). Inside the job
RAY_ADDRESS is set, so a driver that honours it (`RayEvaluator`) joins the cluster instead
of starting its own Ray.

Authentication: Ray (2.52 and later) turns token authentication on by default. The client
sends the token of this machine (RAY_AUTH_TOKEN, else the file at RAY_AUTH_TOKEN_PATH,
else ~/.ray/auth_token) when token mode is on (RAY_AUTH_MODE=token, or a token file
exists); a cluster that rejects it gives a one-line UsageError.

Nothing here knows what is being evolved: it ships a folder and a command.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import re
import secrets
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import ESError, UsageError

DEFAULT_DASHBOARD = "http://127.0.0.1:8265"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")

# Never shipped to the cluster (gitignore syntax, relative to the project folder): run
# outputs, virtual environments, caches and media. Ray also honours the project's .gitignore;
# these hold even where there is none. The working_dir upload limit is a few hundred MiB.
DEFAULT_EXCLUDES = (
    "runs/", ".git/", ".venv/", "venv/", "__pycache__/", "*.pyc", "*.nbi", "*.nbc", ".pytest_cache/",
    ".hypothesis/", ".ruff_cache/", ".mypy_cache/", "*.egg-info/", "build/", "dist/", "*.mp4", "*.gif",
)


def _api_errors() -> tuple[type[BaseException], ...]:
    """What a failed Jobs API call raises: RuntimeError (HTTP errors), OSError (requests'
    connection errors derive from it), ValueError (bad replies), RayError (AuthenticationError)."""
    from ray.exceptions import RayError

    return (RuntimeError, OSError, ValueError, RayError)


class ClusterError(ESError):
    """The cluster could not be reached, or the request failed on its side (exit status 1)."""


# -- building a submission -------------------------------------------------------------------
def shell_path(path: str) -> str:
    """`path` quoted for the job's shell, with a leading "~/" left to expand on the head node.

    `shlex.quote("~/runs")` would stop the expansion and create a folder literally named "~"
    in the job's temporary working copy, which Ray deletes later.
    """
    if path == "~" or path.startswith("~/"):
        rest = path[2:]
        return '"$HOME"' + ("/" + shlex.quote(rest) if rest else "")
    return shlex.quote(path)


def entrypoint_command(script: str, args: Sequence[str], python: str = "python",
                       path_options: Sequence[str] = ()) -> str:
    """The job's shell command: `python script args...`, every word quoted.

    Values of the options in `path_options` (e.g. "--run-dir") go through `shell_path`, so
    "~/runs/x" lands in the home folder of the head node's user.
    """
    words = [shlex.quote(python), shlex.quote(script)]
    args = list(args)
    for i, arg in enumerate(args):
        if i > 0 and args[i - 1] in path_options:
            words.append(shell_path(arg))
        elif "=" in arg and arg.split("=", 1)[0] in path_options:
            flag, value = arg.split("=", 1)
            words.append(shlex.quote(flag) + "=" + shell_path(value))
        else:
            words.append(shlex.quote(arg))
    return " ".join(words)


def runtime_env(working_dir: str | Path, excludes: Sequence[str] = DEFAULT_EXCLUDES,
                env_vars: dict[str, str] | None = None) -> dict[str, Any]:
    """Ray runtime_env that ships `working_dir` (minus `excludes`) as the job's working folder."""
    working_dir = Path(working_dir).resolve()
    if not working_dir.is_dir():
        raise UsageError(f"project folder {working_dir} does not exist")
    env: dict[str, Any] = {"working_dir": str(working_dir), "excludes": list(excludes)}
    if env_vars:
        env["env_vars"] = dict(env_vars)
    return env


def new_submission_id(prefix: str = "evolve") -> str:
    """A readable, unique job id, e.g. evolve-cartpole-v1-20261128T101500Z-3f9a.

    Chosen here (not by Ray) so the run folder can be named after the job before it starts.
    """
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    clean = re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-") or "job"
    return f"{clean}-{stamp}-{secrets.token_hex(2)}"


_SUBMISSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_submission_id(job_id: str) -> str:
    """`job_id` if it can name a job and its run folder, else UsageError (before anything is sent).

    It becomes a folder name on the head and a shell word of the entrypoint, so it must be
    1-128 letters, digits, '.', '_' or '-', starting with a letter or digit; an id Ray
    accepts but the job cannot use would leave a job behind that never starts.
    """
    if not isinstance(job_id, str) or not _SUBMISSION_ID.match(job_id):
        raise UsageError(f"--job-id must be 1-128 letters, digits, '.', '_' or '-' starting with a letter or "
                         f"digit (it names the run folder), got {job_id!r}")
    return job_id


def dashboard_host(address: str) -> str:
    """The host name in a dashboard address ("http://10.0.0.5:8265" -> "10.0.0.5")."""
    match = re.match(r"^(?:[a-z]+://)?([^/:]+)", address)
    return match.group(1) if match else address


# -- talking to the cluster ----------------------------------------------------------------
def _one_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def _translate(e: Exception, what: str, job_id: str | None = None) -> ESError:
    """One-line error for a failed Jobs API call: UsageError for what the user can fix."""
    text = str(e)
    if "Authentication" in text or "401" in text or "403" in text or type(e).__name__ == "AuthenticationError":
        return UsageError(f"{what}: the cluster rejected this machine's token ({_one_line(e)}); copy the head's "
                          "~/.ray/auth_token here or set RAY_AUTH_TOKEN, and RAY_AUTH_MODE=token")
    if job_id is not None and ("does not exist" in text or "not found" in text.lower() or "404" in text):
        return UsageError(f"no job {job_id!r} on this cluster; list them with --list")
    return ClusterError(f"{what}: {_one_line(e)}")


def connect(address: str | None = None):
    """A `JobSubmissionClient` for the dashboard at `address` ("http://HEAD:8265").

    Raises UsageError for a malformed address or a rejected token, ClusterError when the
    dashboard cannot be reached.
    """
    from ray.job_submission import JobSubmissionClient

    address = address or DEFAULT_DASHBOARD
    if address.startswith("ray://") or not re.match(r"^(https?://)?[^/\s]+(:\d+)?/?$", address):
        raise UsageError(f"address must be the dashboard's http://HOST:PORT (default port 8265), got {address!r}")
    if not address.startswith(("http://", "https://")):
        address = "http://" + address
    try:
        return JobSubmissionClient(address)
    except _api_errors() as e:
        if "Authentication" in str(e) or type(e).__name__ == "AuthenticationError":
            raise _translate(e, f"cannot use the cluster at {address}") from None
        raise ClusterError(f"cannot reach the Ray dashboard at {address} ({_one_line(e)}); is the head running "
                           "(`ray start --head`) and the port open?") from None


def submit(client, entrypoint: str, runtime_env: dict, submission_id: str | None = None,
           metadata: dict[str, str] | None = None) -> str:
    """Submit `entrypoint` with `runtime_env`; returns the job (submission) id.

    Ray logs every file pattern it skips while packing the working folder at INFO level;
    those lines are muted during the upload (errors still show).
    """
    ray_logger = logging.getLogger("ray")
    level = ray_logger.level
    ray_logger.setLevel(logging.ERROR)
    try:
        return client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env, submission_id=submission_id,
                                 metadata=metadata)
    except _api_errors() as e:
        raise _translate(e, "job submission failed") from None
    finally:
        ray_logger.setLevel(level)


def status(client, job_id: str) -> Any:
    """The job's `JobDetails` (status, message, start/end times, entrypoint, ...)."""
    try:
        return client.get_job_info(job_id)
    except _api_errors() as e:
        raise _translate(e, f"cannot get job {job_id}", job_id) from None


def logs(client, job_id: str) -> str:
    """Everything the job has printed so far."""
    try:
        return client.get_job_logs(job_id)
    except _api_errors() as e:
        raise _translate(e, f"cannot get the logs of job {job_id}", job_id) from None


def state_name(job_status) -> str:
    """A `JobStatus` as its name: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    return str(job_status).split(".")[-1]  # JobStatus.X -> X on any Ray version


def state(client, job_id: str) -> str:
    """The job's status as a name (see state_name)."""
    return state_name(status(client, job_id).status)


def stop(client, job_id: str, pending_timeout_s: float = 120.0, poll_s: float = 0.5) -> bool:
    """Ask the job to stop (SIGTERM, then SIGKILL); True if it was still running.

    A job still PENDING (its environment being set up) is first waited for, up to
    ``pending_timeout_s`` seconds, until it runs or ends: Ray acknowledges a stop sent to a
    pending job and may then start its entrypoint all the same (ray-project/ray#58353), which
    then runs on, unseen, while the job reads STOPPED.
    """
    deadline = time.monotonic() + pending_timeout_s
    while state(client, job_id) == "PENDING" and time.monotonic() < deadline:
        time.sleep(poll_s)
    try:
        return bool(client.stop_job(job_id))
    except _api_errors() as e:
        raise _translate(e, f"cannot stop job {job_id}", job_id) from None


def list_jobs(client) -> list:
    """`JobDetails` of every job the cluster knows, oldest first."""
    try:
        return sorted(client.list_jobs(), key=lambda j: j.start_time or 0)
    except _api_errors() as e:
        raise _translate(e, "cannot list jobs") from None


def wait(client, job_id: str, timeout_s: float | None = None, poll_s: float = 1.0) -> str:
    """Block until the job reaches SUCCEEDED / FAILED / STOPPED; returns that status.

    Raises ClusterError when `timeout_s` passes first.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        now = state(client, job_id)
        if now in TERMINAL:
            return now
        if deadline is not None and time.monotonic() > deadline:
            raise ClusterError(f"job {job_id} is still {now} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def follow(client, job_id: str, out: TextIO = sys.stdout) -> str:
    """Stream the job's logs to `out` until it ends; returns its final status."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    try:
        asyncio.run(tail())
    except Exception as e:  # noqa: BLE001 - aiohttp's errors have no common base here; the status still tells
        print(f"(log stream ended: {_one_line(e)})", file=sys.stderr)
    return wait(client, job_id)
