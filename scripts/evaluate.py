#!/usr/bin/env python
"""Evaluate an evolved agent by the standard protocol; everything comes from the run folder.

    python scripts/evaluate.py RUN_DIR --episodes 100              # -> RUN_DIR/eval.json, prints mean +/- std
    python scripts/evaluate.py RUN_DIR --checkpoint latest --eval-json latest.json
    python scripts/evaluate.py RUN_DIR --morphology damaged-left   # quadruped, another body
    python scripts/evaluate.py RUN_DIR --backend serial            # in this process, not on Ray

The protocol: full episodes (training early stops off), held-out test seeds that neither
training nor its held-out evaluation used, Gymnasium's own CarRacing; episodes run in
parallel on Ray. Evaluation episode k is the episode `scripts/watch.py` shows as episode k.

Errors are one line on stderr: exit status 2 for bad input (flags, run folder, config.json,
checkpoint, an eval.json that cannot be written: checked before any episode), 1 when
something fails later (a full disk while writing: the evaluation is then printed on stdout,
not lost). --checkpoint latest uses the newest checkpoint that verifies; any newer one it
skips is named in a warning and in eval.json ("generation", "skipped").
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _checkout  # noqa: F401  (first: the packages below must be this checkout's)
import es
from hebbian import evaluate
from hebbian.cli import OneLineParser, run_script

NAME = "evaluate.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=NAME, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="run folder written by scripts/evolve.py")
    p.add_argument("--episodes", type=int, default=100, help="test episodes (default 100, the paper's protocol)")
    p.add_argument("--checkpoint", default="best", metavar="best|latest|GEN",
                   help="which parameters: best held-out centre (default), newest checkpoint that verifies, "
                        "or the one after GEN generations")
    p.add_argument("--morphology", help="quadruped: evaluate on this body (e.g. one it did not train on)")
    p.add_argument("--eval-json", type=Path, help="where to write the evaluation (default: RUN_DIR/eval.json)")
    p.add_argument("--backend", choices=("ray", "serial"), default="ray",
                   help="run episodes on Ray workers (default) or in this process")
    p.add_argument("--workers", type=int, help="Ray workers (default: one per CPU)")
    p.add_argument("--ray-address", help="join a Ray cluster ('auto' or host:port; default: local, or RAY_ADDRESS)")
    return p


def check_args(a: argparse.Namespace) -> None:
    """Impossible flags: es.UsageError (one line), before anything loads."""
    for name in ("episodes", "workers"):
        value = getattr(a, name)
        if value is not None and value < 1:
            raise es.UsageError(f"--{name} must be a positive whole number, got {value}")


def execute(args: argparse.Namespace) -> int:
    run = evaluate.load_run(args.run_dir, args.checkpoint)
    for line in evaluate.load_warnings(run):  # a fallback is announced, and recorded in eval.json
        print(f"{NAME}: warning: {line}", file=sys.stderr)
    eval_path = evaluate.report_path(run, args.eval_json)
    report = evaluate.evaluate(run, args.episodes, morphology=args.morphology, backend=args.backend,
                               workers=args.workers, address=args.ray_address)
    try:
        path = report.write(eval_path)
    except evaluate.ReportWriteError as e:  # the disk filled up meanwhile: the result must not be lost
        sys.stdout.write(e.text)
        sys.stdout.flush()
        print(f"{NAME}: error: {e}; the evaluation is printed on stdout instead ({report.summary()})", file=sys.stderr)
        return 1
    print(f"{report.summary()} -> {path}")
    return 0


def main(argv=None) -> int:
    return run_script(build_parser, check_args, execute, argv)


if __name__ == "__main__":
    sys.exit(main())
