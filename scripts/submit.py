#!/usr/bin/env python
"""Run scripts/evolve.py on a Ray cluster through the Ray Jobs API.

    python scripts/submit.py --address http://HEAD:8265 -- CarRacing-v2 --popsize 200
    python scripts/submit.py --address http://HEAD:8265 --follow -- CartPole-v1 --generations 20
    python scripts/submit.py --address http://HEAD:8265 --status JOB_ID   (or --logs, --stop, --list)

Everything after `--` goes to evolve.py unchanged. This project folder (without runs/,
virtual environments and caches) is shipped as the job's working folder. Unless the
arguments name --run-dir or --resume, the run folder is ~/hebbian-runs/<job id> on the head
node (--runs-root changes that); fetch it from there when the job is done (docs/cluster.md).
The token of this machine (~/.ray/auth_token or RAY_AUTH_TOKEN) authenticates the request.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import _checkout  # noqa: F401  (first: the packages below must be this checkout's)
import es
from es import cluster
from hebbian.cli import OneLineParser

PROJECT_DIR = Path(__file__).resolve().parent.parent
EVOLVE = "scripts/evolve.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage="%(prog)s [options] -- EVOLVE_ARGS...  |  %(prog)s --status/--logs/--stop JOB"
                                      "  |  %(prog)s --list")
    p.add_argument("--address", help="the head's dashboard, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS, "
                                     f"an http RAY_ADDRESS, else {cluster.DEFAULT_DASHBOARD})")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--status", metavar="JOB", help="print a job's status")
    act.add_argument("--logs", metavar="JOB", help="print a job's logs so far")
    act.add_argument("--stop", metavar="JOB", help="stop a running job")
    act.add_argument("--list", action="store_true", help="list the cluster's jobs")
    s = p.add_argument_group("submitting")
    s.add_argument("--follow", action="store_true",
                   help="stream the logs until the job ends; exit 0 only if it succeeded")
    s.add_argument("--runs-root", default="~/hebbian-runs",
                   help="folder on the head node for the run folder <runs-root>/<job id> (default: ~/hebbian-runs); "
                        "ignored when the evolve arguments give --run-dir or --resume")
    s.add_argument("--job-id", help="the job (submission) id (default: evolve-<env>-<UTC time>-<4 hex>)")
    s.add_argument("--python", default="python", help="Python on the head node that runs evolve.py (default: python)")
    s.add_argument("--project", type=Path, default=PROJECT_DIR, help="folder to ship (default: this project)")
    p.add_argument("evolve_args", nargs=argparse.REMAINDER, help="arguments of scripts/evolve.py (after --)")
    return p


def default_address() -> str:
    for name in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        value = os.environ.get(name, "")
        if value.startswith(("http://", "https://")):
            return value
    return cluster.DEFAULT_DASHBOARD


def given_run_dir(evolve_args: list[str]) -> str | None:
    """The folder the evolve arguments name with --run-dir or --resume, if any."""
    for i, arg in enumerate(evolve_args):
        for flag in ("--run-dir", "--resume"):
            if arg == flag and i + 1 < len(evolve_args):
                return evolve_args[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None


def check_evolve_args(project: Path, args: list[str]) -> None:
    """Parse `args` with evolve.py's own parser here, so a typo fails now, not on the cluster."""
    spec = importlib.util.spec_from_file_location("_evolve_cli", project / EVOLVE)
    if spec is None or not (project / EVOLVE).is_file():
        raise es.UsageError(f"{project} has no {EVOLVE}; --project must be this project's folder")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build_parser().parse_args(args)  # exits 2 with evolve's own message


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    evolve_args = list(args.evolve_args)
    if evolve_args[:1] == ["--"]:
        evolve_args = evolve_args[1:]
    query = args.status or args.logs or args.stop or args.list
    if query and evolve_args:
        parser.error("--status/--logs/--stop/--list take no evolve arguments")
    if not query and not evolve_args:
        parser.error("give the evolve.py arguments after --, e.g. -- CartPole-v1 --generations 20")
    address = args.address or default_address()
    try:
        if not query:
            check_evolve_args(args.project, evolve_args)
            if args.job_id is not None:
                cluster.check_submission_id(args.job_id)
        client = cluster.connect(address)
        if args.status:
            info = cluster.status(client, args.status)
            state = cluster.state_name(info.status)
            print(f"{args.status}: {state}" + (f" ({info.message})" if info.message else ""))
            return 0
        if args.logs:
            sys.stdout.write(cluster.logs(client, args.logs))
            return 0
        if args.stop:
            if cluster.state(client, args.stop) == "PENDING":
                print(f"{args.stop} is still starting: waiting for it to run before stopping it "
                      "(Ray can lose a stop sent earlier)", file=sys.stderr)
            running = cluster.stop(client, args.stop)
            print(f"{args.stop}: {'stop requested' if running else 'was not running'}")
            return 0
        if args.list:
            for info in cluster.list_jobs(client):
                state = cluster.state_name(info.status)
                print(f"{info.submission_id or info.job_id}  {state:9s}  {info.entrypoint}")
            return 0

        task = evolve_args[0] if not evolve_args[0].startswith("-") else "resume"
        job_id = args.job_id or cluster.new_submission_id(f"evolve-{task}")
        run_dir = given_run_dir(evolve_args)
        if run_dir is None:
            run_dir = f"{args.runs_root.rstrip('/')}/{job_id}"
            evolve_args += ["--run-dir", run_dir]
        entrypoint = cluster.entrypoint_command(EVOLVE, evolve_args, python=args.python,
                                                path_options=("--run-dir", "--resume", "--config"))
        job_id = cluster.submit(client, entrypoint, cluster.runtime_env(args.project), submission_id=job_id)
        host = cluster.dashboard_host(address)
        print(f"submitted job {job_id} to {address}")
        print(f"  command: {entrypoint}")
        print(f"  run folder on the head node: {run_dir}")
        print(f"  fetch it when done: rsync -a {host}:{run_dir}/ runs/{job_id}/  "
              f"(ray up clusters: ray rsync-down CLUSTER.yaml {run_dir} runs/{job_id})")
        print(f"  logs: python scripts/submit.py --address {address} --logs {job_id}")
        if not args.follow:
            return 0
        state = cluster.follow(client, job_id)
        print(f"job {job_id}: {state}")
        return 0 if state == "SUCCEEDED" else 1
    except es.UsageError as e:
        parser.exit(2, f"submit.py: error: {e}\n")
    except es.ESError as e:
        parser.exit(1, f"submit.py: error: {e}\n")
    except KeyboardInterrupt:
        print("\nstopped following; the job keeps running (--stop JOB to end it)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
