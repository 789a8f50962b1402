#!/usr/bin/env python
"""Fitness curves of one or more runs, against generations and against wall time.

    python scripts/plot.py runs/CarRacing-v3/20261128T101500Z-0          # -> <run>/fitness.png
    python scripts/plot.py RUN_A RUN_B --labels hebbian static --out compare.svg
    python scripts/plot.py RUN_A --format svg

Population mean (solid) and max (dashed), the centre on held-out seeds (markers, +/- std band).
Errors are one line: exit status 2 for bad input (a folder, a damaged progress.csv, an output
that cannot be written), 1 when writing the figure fails anyway (e.g. the disk filled up).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import _checkout  # noqa: F401  (first: the packages below must be this checkout's)
from es import plotting
from hebbian.cli import OneLineParser, first_line, run_command

NAME = "plot.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=NAME, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders written by scripts/evolve.py")
    p.add_argument("--labels", nargs="+", help="one legend label per run (default: <env>/<run folder>)")
    p.add_argument("--out", type=Path, help="output file (default: fitness.png / .svg in the first run folder)")
    p.add_argument("--format", choices=plotting.FORMATS, help="image format (default: the --out suffix, else png)")
    p.add_argument("--title", help="figure title")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def body() -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", plotting.TornLineWarning)
            out = plotting.plot_runs(args.run_dirs, args.out, labels=args.labels, fmt=args.format, title=args.title)
        for w in caught:  # a left-out torn line is announced, one line each
            if issubclass(w.category, plotting.TornLineWarning):
                print(f"{NAME}: warning: {first_line(w.message)}", file=sys.stderr)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        print(out)
        return 0

    return run_command(parser, body)

if __name__ == "__main__":
    sys.exit(main())
