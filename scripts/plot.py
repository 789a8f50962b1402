#!/usr/bin/env python
"""Fitness curves of one or more runs, against generations and against wall time.

    python scripts/plot.py runs/CarRacing-v3/20261128T101500Z-0          # -> <run>/fitness.png
    python scripts/plot.py RUN_A RUN_B --labels hebbian static --out compare.svg
    python scripts/plot.py RUN_A --format svg

Population mean (solid) and max (dashed), the centre on held-out seeds (markers, +/- std band).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import es
from es import plotting


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders written by scripts/evolve.py")
    p.add_argument("--labels", nargs="+", help="one legend label per run (default: <env>/<run folder>)")
    p.add_argument("--out", type=Path, help="output file (default: fitness.png / .svg in the first run folder)")
    p.add_argument("--format", choices=plotting.FORMATS, help="image format (default: the --out suffix, else png)")
    p.add_argument("--title", help="figure title")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        out = plotting.plot_runs(args.run_dirs, args.out, labels=args.labels, fmt=args.format, title=args.title)
    except es.UsageError as e:
        parser.exit(2, f"plot.py: error: {e}\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
