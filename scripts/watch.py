#!/usr/bin/env python
"""Watch, record and evaluate an evolved agent; everything comes from the run folder.

    python scripts/watch.py RUN_DIR                               # best agent, in a window
    python scripts/watch.py RUN_DIR --video drive.mp4 --episodes 3
    python scripts/watch.py RUN_DIR --checkpoint latest --gif drive.gif --scale 0.5
    python scripts/watch.py RUN_DIR --no-render --episodes 100     # standard protocol -> eval.json
    python scripts/watch.py RUN_DIR --morphology damaged-left      # quadruped, another body
    python scripts/watch.py RUN_DIR --weights-plot weights.png     # Hebbian weights in one episode

Watched and evaluated episodes follow the standard protocol (full episodes, held-out test
seeds, Gymnasium's own CarRacing): watched episode k is evaluation episode k.

Errors are one line on stderr: exit status 2 for bad input (flags, run folder, config.json,
checkpoint, an output that cannot be written: checked before any episode), 1 when something
fails later (a full disk while writing: the evaluation is then printed on stdout, not lost).
--checkpoint latest uses the newest checkpoint that verifies; any newer one it skips is
named in a warning and in eval.json ("generation", "skipped").
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import es
from es.plotting import check_output
from hebbian import evaluate, watch
from hebbian.cli import OneLineParser, exit_unexpected, first_line

NAME = "watch.py"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=NAME, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="run folder written by scripts/evolve.py")
    p.add_argument("--checkpoint", default="best", metavar="best|latest|GEN",
                   help="which parameters: best held-out centre (default), newest checkpoint that verifies, "
                        "or the one after GEN generations")
    p.add_argument("--episodes", type=int, help="episodes to play (default: 1 when watching, 100 with --no-render)")
    p.add_argument("--morphology", help="quadruped: play on this body (e.g. one it did not train on)")
    w = p.add_argument_group("watching")
    w.add_argument("--render", choices=("human", "none"),
                   help="human: show a window (default when there is a display and no --video/--gif/--weights-plot)")
    w.add_argument("--video", type=Path, metavar="OUT.mp4", help="write the episodes as an H.264 mp4")
    w.add_argument("--gif", type=Path, metavar="OUT.gif", help="write the episodes as an animated GIF")
    w.add_argument("--fps", type=float, help=f"frames per second, up to {watch.MAX_FPS:g} (default: the env's own rate)")
    w.add_argument("--scale", type=float, help="resize frames by this factor, 0.05 to 8 (default 1)")
    w.add_argument("--max-steps", type=int, help="cut each watched episode after this many steps")
    e = p.add_argument_group("evaluation (standard protocol)")
    e.add_argument("--no-render", action="store_true",
                   help="evaluate without drawing: writes eval.json, prints mean +/- std")
    e.add_argument("--eval-json", type=Path, help="where to write the evaluation (default: RUN_DIR/eval.json)")
    e.add_argument("--backend", choices=("ray", "serial"),
                   help="run episodes on Ray workers (default) or in this process")
    e.add_argument("--workers", type=int, help="Ray workers (default: one per CPU)")
    e.add_argument("--ray-address", help="join a Ray cluster ('auto' or host:port; default: local, or RAY_ADDRESS)")
    d = p.add_argument_group("weight dynamics")
    d.add_argument("--weights-plot", type=Path, metavar="OUT.png",
                   help="record the first episode and plot per-layer weight norms, |dW| per step and heat maps "
                        "(.png, .svg or .pdf)")
    d.add_argument("--weights-layer", type=int, help="layer of the heat maps (default: the one closest to square)")
    return p


def check_args(a: argparse.Namespace) -> None:
    """Contradictory, impossible or ignored flags: es.UsageError (one line), before anything loads."""
    def fail(message: str):
        raise es.UsageError(message)

    if a.no_render and (a.render == "human" or a.video or a.gif):
        fail("--no-render evaluates without drawing; drop --render human / --video / --gif")
    if a.no_render and a.max_steps is not None:
        fail("--no-render runs the standard protocol with full episodes; drop --max-steps")
    if a.no_render and (a.fps is not None or a.scale is not None):
        fail("--fps and --scale apply to drawn frames; --no-render draws none: drop them")
    if not a.no_render:
        given = [f for f, v in (("--eval-json", a.eval_json), ("--backend", a.backend), ("--workers", a.workers),
                                ("--ray-address", a.ray_address)) if v is not None]
        if given:
            fail(f"{' / '.join(given)} {'applies' if len(given) == 1 else 'apply'} to the evaluation; "
                 "add --no-render (watching plays in this process)")
    if a.weights_layer is not None and not a.weights_plot:
        fail("--weights-layer picks the heat maps of --weights-plot; add --weights-plot OUT.png")
    if a.render == "none" and not (a.video or a.gif or a.weights_plot):
        fail("--render none with nothing to write; add --video / --gif / --weights-plot, or evaluate with --no-render")
    for name in ("episodes", "max_steps", "workers"):
        value = getattr(a, name)
        if value is not None and value < 1:
            fail(f"--{name.replace('_', '-')} must be a positive whole number, got {value}")
    if a.fps is not None and not (math.isfinite(a.fps) and 0 < a.fps <= watch.MAX_FPS):
        fail(f"--fps must be a number above 0 and at most {watch.MAX_FPS:g}, got {a.fps}")
    if a.scale is not None and not 0.05 <= a.scale <= 8:
        fail(f"--scale must be between 0.05 and 8, got {a.scale}")
    for flag, path, suffixes in (("--video", a.video, (".mp4", ".mkv", ".mov", ".avi")), ("--gif", a.gif, (".gif",)),
                                 ("--weights-plot", a.weights_plot, tuple("." + f for f in watch.PLOT_FORMATS))):
        if path is not None and path.suffix.lower() not in suffixes:
            fail(f"{flag} needs a file ending in {' or '.join(suffixes)}, got {path}")


RUN_FILES = ("config.json", "progress.csv", "best.npz", "best.json")


def check_outputs(a: argparse.Namespace, run: evaluate.LoadedRun) -> Path | None:
    """Every file this command will write, checked before any episode (es.UsageError, one
    line); returns where the evaluation goes (None without --no-render)."""
    eval_path = None
    if a.no_render:
        eval_path = a.eval_json or run.run_dir / "eval.json"
        target = eval_path.resolve()
        root = run.run_dir.resolve()
        if target in [root / f for f in RUN_FILES] or target.parent == root / "checkpoints":
            raise es.UsageError(f"--eval-json {eval_path} would overwrite a file of the run; choose another file")
        check_output(eval_path, "evaluation", "choose another file" if a.eval_json else
                     "write it elsewhere with --eval-json FILE")
    for flag, path in (("weights plot", a.weights_plot), ("video", a.video), ("GIF", a.gif)):
        if path is not None:
            check_output(path, flag)
    return eval_path


def warn(message: str) -> None:
    print(f"{NAME}: warning: {message}", file=sys.stderr)


def execute(args: argparse.Namespace) -> int:
    run = evaluate.load_run(args.run_dir, args.checkpoint)
    skipped = evaluate.skipped_warning(run)
    if skipped:
        warn(skipped)  # a fallback is announced, and recorded in eval.json ("generation", "skipped")
    if run.played_env_id != run.env_id:
        warn(f"{run.run_dir}/config.json names {run.env_id}, which this Gymnasium does not have; "
             f"playing {run.played_env_id} instead (eval.json records both)")
    eval_path = check_outputs(args, run)
    if args.no_render:
        report = evaluate.evaluate(run, args.episodes or 100, morphology=args.morphology,
                                   backend=args.backend or "ray", workers=args.workers, address=args.ray_address)
        try:
            path = report.write(eval_path)
        except evaluate.ReportWriteError as e:  # the disk filled up meanwhile: the result must not be lost
            sys.stdout.write(e.text)
            sys.stdout.flush()
            print(f"{NAME}: error: {e}; the evaluation is printed on stdout instead ({report.summary()})",
                  file=sys.stderr)
            return 1
        print(f"{report.summary()} -> {path}")
        if not args.weights_plot:
            return 0
    problem = evaluate.make_problem(run, args.morphology)
    seeds = evaluate.run_test_seeds(run, args.episodes or 1)
    if args.weights_plot:
        trace = watch.record_weights(problem, run.params, seeds[0], layer=args.weights_layer,
                                     max_steps=args.max_steps)
        watch.plot_weight_trace(trace, args.weights_plot, f"{run.env_id}, {run.label}: weights within test "
                                                          f"episode 1 ({trace.steps} steps, return {trace.ret:.1f})")
        print(f"weights plot ({trace.steps} steps, layer {trace.layer} heat maps) -> {args.weights_plot}")
    if args.no_render:
        return 0
    render = args.render or ("none" if (args.video or args.gif or args.weights_plot) else "human")
    if render == "none" and not (args.video or args.gif):
        return 0
    saved = []
    results = watch.watch(problem, run.params, seeds, window=render == "human", video=args.video, gif=args.gif,
                          fps=args.fps, scale=1.0 if args.scale is None else args.scale, max_steps=args.max_steps,
                          title=f"{run.env_id} - {run.label}", on_start=print,
                          on_episode=lambda i, r: print(f"episode {i + 1}: return {r.ret:.2f} ({r.steps} steps)"),
                          on_saved=lambda path, frames: saved.append(path) or print(f"{frames} frames -> {path}"))
    if len(results) > 1:
        print(f"{watch.describe_returns([r.ret for r in results])} over {len(results)} watched episodes")
    for path in (args.video, args.gif):
        if path and path not in saved:
            warn(f"no frame was recorded, so {path} was not written")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_args(args)
        return execute(args)
    except es.UsageError as e:  # bad flags, folder, config.json, checkpoint, morphology, output, no display
        parser.exit(2, f"{NAME}: error: {first_line(e)}\n")
    except es.ESError as e:  # the evaluation broke, an output could not be written after all
        parser.exit(1, f"{NAME}: error: {first_line(e)}\n")
    except KeyboardInterrupt:
        print(f"{NAME}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # reading or writing failed in a way nothing above foresaw
        parser.exit(1, f"{NAME}: error: {first_line(e)}\n")
    except Exception as e:  # a bug: still one line, the traceback on request
        exit_unexpected(parser, e)


if __name__ == "__main__":
    sys.exit(main())
