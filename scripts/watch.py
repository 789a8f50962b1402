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
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import es
from hebbian import evaluate, watch


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="run folder written by scripts/evolve.py")
    p.add_argument("--checkpoint", default="best", metavar="best|latest|GEN",
                   help="which parameters: best held-out centre (default), newest checkpoint, "
                        "or the one after GEN generations")
    p.add_argument("--episodes", type=int, help="episodes to play (default: 1 when watching, 100 with --no-render)")
    p.add_argument("--morphology", help="quadruped: play on this body (e.g. one it did not train on)")
    w = p.add_argument_group("watching")
    w.add_argument("--render", choices=("human", "none"),
                   help="human: show a window (default when there is a display and no --video/--gif/--weights-plot)")
    w.add_argument("--video", type=Path, metavar="OUT.mp4", help="write the episodes as an H.264 mp4")
    w.add_argument("--gif", type=Path, metavar="OUT.gif", help="write the episodes as an animated GIF")
    w.add_argument("--fps", type=float, help="frames per second (default: the env's own rate)")
    w.add_argument("--scale", type=float, default=1.0, help="resize frames by this factor (default 1)")
    w.add_argument("--max-steps", type=int, help="cut each watched episode after this many steps")
    e = p.add_argument_group("evaluation (standard protocol)")
    e.add_argument("--no-render", action="store_true",
                   help="evaluate without drawing: writes eval.json, prints mean +/- std")
    e.add_argument("--eval-json", type=Path, help="where to write the evaluation (default: RUN_DIR/eval.json)")
    e.add_argument("--backend", choices=("ray", "serial"), default="ray",
                   help="run episodes on Ray workers (default) or in this process")
    e.add_argument("--workers", type=int, help="Ray workers (default: one per CPU)")
    e.add_argument("--ray-address", help="join a Ray cluster ('auto' or host:port; default: local, or RAY_ADDRESS)")
    d = p.add_argument_group("weight dynamics")
    d.add_argument("--weights-plot", type=Path, metavar="OUT.png",
                   help="record the first episode and plot per-layer weight norms, |dW| per step and heat maps")
    d.add_argument("--weights-layer", type=int, help="layer of the heat maps (default: the one closest to square)")
    return p


def check_args(a: argparse.Namespace) -> None:
    """Contradictory or impossible flags: es.UsageError (one line), before anything loads."""
    def fail(message: str):
        raise es.UsageError(message)

    if a.no_render and (a.render == "human" or a.video or a.gif):
        fail("--no-render evaluates without drawing; drop --render human / --video / --gif")
    if a.no_render and a.max_steps is not None:
        fail("--no-render runs the standard protocol with full episodes; drop --max-steps")
    for name in ("episodes", "max_steps", "workers"):
        value = getattr(a, name)
        if value is not None and value < 1:
            fail(f"--{name.replace('_', '-')} must be a positive whole number, got {value}")
    if a.fps is not None and not a.fps > 0:
        fail(f"--fps must be positive, got {a.fps}")
    if not 0.05 <= a.scale <= 8:
        fail(f"--scale must be between 0.05 and 8, got {a.scale}")
    for flag, path, suffixes in (("--video", a.video, (".mp4", ".mkv", ".mov", ".avi")), ("--gif", a.gif, (".gif",))):
        if path is not None and path.suffix.lower() not in suffixes:
            fail(f"{flag} needs a file ending in {' or '.join(suffixes)}, got {path}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    name = "watch.py"
    try:
        check_args(args)
        run = evaluate.load_run(args.run_dir, args.checkpoint)
        if args.no_render:
            report = evaluate.evaluate(run, args.episodes or 100, morphology=args.morphology, backend=args.backend,
                                       workers=args.workers, address=args.ray_address)
            path = report.write(args.eval_json or run.run_dir / "eval.json")
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
        results = watch.watch(problem, run.params, seeds, window=render == "human", video=args.video, gif=args.gif,
                              fps=args.fps, scale=args.scale, max_steps=args.max_steps,
                              title=f"{run.env_id} - {run.label}", on_start=print,
                              on_episode=lambda i, r: print(f"episode {i + 1}: return {r.ret:.2f} ({r.steps} steps)"))
        if len(results) > 1:
            print(f"{watch.describe_returns([r.ret for r in results])} over {len(results)} watched episodes")
        for path in (args.video, args.gif):
            if path:
                print(f"{sum(r.steps for r in results)} frames -> {path}")
    except es.UsageError as e:  # bad folder, generation, checkpoint, morphology, no display
        parser.exit(2, f"{name}: error: {e}\n")
    except es.ESError as e:
        parser.exit(1, f"{name}: error: {e}\n")
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
