#!/usr/bin/env python
"""Watch and record an evolved agent; everything comes from the run folder.

    python scripts/watch.py RUN_DIR                               # best agent, in a window
    python scripts/watch.py RUN_DIR --video drive.mp4 --episodes 3
    python scripts/watch.py RUN_DIR --checkpoint latest --gif drive.gif --scale 0.5
    python scripts/watch.py RUN_DIR --morphology damaged-left      # quadruped, another body
    python scripts/watch.py RUN_DIR --weights-plot weights.png     # Hebbian weights in one episode

Watched episodes follow the standard protocol (full episodes, held-out test seeds,
Gymnasium's own CarRacing): watched episode k is evaluation episode k of
`scripts/evaluate.py RUN_DIR --episodes 100`, the evaluation's own command.

Errors are one line on stderr: exit status 2 for bad input (flags, run folder, config.json,
checkpoint, an output that cannot be written: checked before any episode), 1 when something
fails later (a full disk while writing: nothing half-written stays). --checkpoint latest
uses the newest checkpoint that verifies; any newer one it skips is named in a warning.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import _checkout  # noqa: F401  (first: the packages below must be this checkout's)
import es
from es.plotting import check_output
from hebbian import evaluate, frames, playing, weight_trace
from hebbian.cli import OneLineParser, run_script
from hebbian.watch import watch

NAME = "watch.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=NAME, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="run folder written by scripts/evolve.py")
    p.add_argument("--checkpoint", default="best", metavar="best|latest|GEN",
                   help="which parameters: best held-out centre (default), newest checkpoint that verifies, "
                        "or the one after GEN generations")
    p.add_argument("--episodes", type=int, help="episodes to play (default 1)")
    p.add_argument("--morphology", help="quadruped: play on this body (e.g. one it did not train on)")
    w = p.add_argument_group("watching")
    w.add_argument("--render", choices=("human", "none"),
                   help="human: show a window (default when there is a display and no --video/--gif/--weights-plot)")
    w.add_argument("--video", type=Path, metavar="OUT.mp4", help="write the episodes as an H.264 mp4")
    w.add_argument("--gif", type=Path, metavar="OUT.gif", help="write the episodes as an animated GIF")
    w.add_argument("--fps", type=float, help=f"frames per second, up to {frames.MAX_FPS:g} (default: the env's own rate)")
    w.add_argument("--scale", type=float, help="resize frames by this factor, 0.05 to 8 (default 1)")
    w.add_argument("--max-steps", type=int, help="cut each watched episode after this many steps")
    d = p.add_argument_group("weight dynamics")
    d.add_argument("--weights-plot", type=Path, metavar="OUT.png",
                   help="record the first episode and plot per-layer weight norms, |dW| per step and heat maps "
                        "(.png, .svg or .pdf)")
    d.add_argument("--weights-layer", type=int, help="layer of the heat maps (default: the one closest to square)")
    # the evaluation's flags, from when it was `watch.py --no-render`: kept only to say where it went
    p.add_argument("--no-render", action="store_const", const=True, help=argparse.SUPPRESS)
    for flag in EVALUATION_FLAGS[1:]:
        p.add_argument(flag, help=argparse.SUPPRESS)
    return p


EVALUATION_FLAGS = ("--no-render", "--eval-json", "--backend", "--workers", "--ray-address")


def check_args(a: argparse.Namespace) -> None:
    """Contradictory, impossible or ignored flags: es.UsageError (one line), before anything loads."""
    def fail(message: str):
        raise es.UsageError(message)

    given = [f for f in EVALUATION_FLAGS if getattr(a, f[2:].replace("-", "_")) is not None]
    if given:
        command = f"scripts/evaluate.py {a.run_dir} --episodes {a.episodes or 100}"
        fail(f"the evaluation is its own command now: {command}" if given == ["--no-render"] else
             f"{' / '.join(given)} {'belongs' if len(given) == 1 else 'belong'} to the evaluation, which is its own "
             f"command now: {command}")
    if a.weights_layer is not None and not a.weights_plot:
        fail("--weights-layer picks the heat maps of --weights-plot; add --weights-plot OUT.png")
    if a.render == "none" and not (a.video or a.gif or a.weights_plot):
        fail("--render none with nothing to write; add --video / --gif / --weights-plot, or evaluate with "
             "scripts/evaluate.py")
    for name in ("episodes", "max_steps"):
        value = getattr(a, name)
        if value is not None and value < 1:
            fail(f"--{name.replace('_', '-')} must be a positive whole number, got {value}")
    if a.fps is not None and not (math.isfinite(a.fps) and 0 < a.fps <= frames.MAX_FPS):
        fail(f"--fps must be a number above 0 and at most {frames.MAX_FPS:g}, got {a.fps}")
    if a.scale is not None and not 0.05 <= a.scale <= 8:
        fail(f"--scale must be between 0.05 and 8, got {a.scale}")
    for flag, path, suffixes in (("--video", a.video, (".mp4", ".mkv", ".mov", ".avi")), ("--gif", a.gif, (".gif",)),
                                 ("--weights-plot", a.weights_plot, tuple("." + f for f in weight_trace.PLOT_FORMATS))):
        if path is not None and path.suffix.lower() not in suffixes:
            fail(f"{flag} needs a file ending in {' or '.join(suffixes)}, got {path}")


def check_outputs(a: argparse.Namespace) -> None:
    """Every file this command will write, checked before any episode (es.UsageError, one line)."""
    for flag, path in (("weights plot", a.weights_plot), ("video", a.video), ("GIF", a.gif)):
        if path is not None:
            check_output(path, flag)


def warn(message: str) -> None:
    print(f"{NAME}: warning: {message}", file=sys.stderr)


def execute(args: argparse.Namespace) -> int:
    run = evaluate.load_run(args.run_dir, args.checkpoint)
    for line in evaluate.load_warnings(run):  # a fallback is announced
        warn(line)
    check_outputs(args)
    problem = evaluate.make_problem(run, args.morphology)
    seeds = evaluate.run_test_seeds(run, args.episodes or 1)
    if args.weights_plot:
        trace = weight_trace.record_weights(problem, run.params, seeds[0], layer=args.weights_layer,
                                            max_steps=args.max_steps)
        weight_trace.plot_weight_trace(trace, args.weights_plot, f"{run.played_env_id}, {run.label}: weights within test "
                                                                 f"episode 1 ({trace.steps} steps, return "
                                                                 f"{trace.ret:.1f})")
        print(f"weights plot ({trace.steps} steps, layer {trace.layer} heat maps) -> {args.weights_plot}")
    render = args.render or ("none" if (args.video or args.gif or args.weights_plot) else "human")
    if render == "none" and not (args.video or args.gif):
        return 0
    saved = []
    results = watch(problem, run.params, seeds, window=render == "human", video=args.video, gif=args.gif,
                    fps=args.fps, scale=1.0 if args.scale is None else args.scale, max_steps=args.max_steps,
                    title=f"{run.env_id} - {run.label}", on_start=print,
                    on_episode=lambda i, r: print(f"episode {i + 1}: return {r.ret:.2f} ({r.steps} steps)"),
                    on_saved=lambda path, n: saved.append(path) or print(f"{n} frames -> {path}"))
    if len(results) > 1:
        print(f"{playing.describe_returns([r.ret for r in results])} over {len(results)} watched episodes")
    for path in (args.video, args.gif):
        if path and path not in saved:
            warn(f"no frame was recorded, so {path} was not written")
    return 0


def main(argv=None) -> int:
    return run_script(build_parser, check_args, execute, argv)


if __name__ == "__main__":
    sys.exit(main())
