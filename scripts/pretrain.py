#!/usr/bin/env python
"""Pretrain a frame encoder with a contrastive objective, then use it frozen in evolution.

    python scripts/pretrain.py CarRacing-v2 --out encoders/cnn-supcon.pt             # scripted driver, SupCon
    python scripts/pretrain.py CarRacing-v2 --objective byol --encoder vit-linear --out encoders/vit-byol.pt
    python scripts/pretrain.py CarRacing-v2 --driver runs/CarRacing-v3/20261128T101500Z-0 --out enc.pt
    python scripts/pretrain.py CarRacing-v2 --use-dataset frames.npz --labels my_labels.csv --out enc.pt
    python scripts/evolve.py CarRacing-v2 --encoder pretrained:encoders/cnn-supcon.pt

Frames are collected (unless --use-dataset) into a dataset file (--dataset, default next to
--out), the encoder is trained on all but the held-out episodes, and with labels a linear
probe reports the held-out accuracy of its frozen features (and of the untrained encoder).
Writes OUT (.pt state dict, loads with torch.load(weights_only=True)) and OUT's .json.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import _checkout  # noqa: F401  (first: the packages below must be this checkout's)
import es
from hebbian import presets
from hebbian.encoders.augment import FrameAugment
from hebbian.pretraining import (
    OBJECTIVES,
    AgentDriver,
    FrameDataset,
    RandomDriver,
    ScriptedDriver,
    TrainSettings,
    collect_frames,
    pretrain_encoder,
    read_label_column,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("env_id", help="a CarRacing id, e.g. CarRacing-v2")
    p.add_argument("--out", type=Path, required=True, help="encoder file to write (.pt; the .json goes beside it)")
    d = p.add_argument_group("frames")
    d.add_argument("--driver", default="scripted",
                   help="who drives while frames are collected: 'scripted' (labels: its steering), "
                        "'random' (no labels) or a run folder of evolve.py (labels: the agent's steering)")
    d.add_argument("--frames", type=int, default=3000, help="frames to collect (default 3000)")
    d.add_argument("--episode-frames", type=int, default=250, help="frames kept per episode (default 250)")
    d.add_argument("--dataset", type=Path, help="where to write the collected frames (default: OUT with .frames.npz)")
    d.add_argument("--use-dataset", type=Path, help="train on this dataset file instead of collecting frames")
    d.add_argument("--labels", type=Path, help="label column to use instead of the driver's: .npy, or text/CSV "
                                                "with one whole number per frame")
    t = p.add_argument_group("training")
    t.add_argument("--encoder", default="cnn", help="cnn (the paper's, 84x84), vit-<mechanism> or slots (96x96)")
    t.add_argument("--encoder-options", type=json.loads, default={},
                   help='JSON of encoder keywords, e.g. \'{"image_size": 64}\'')
    t.add_argument("--objective", choices=OBJECTIVES, default="supcon", help="default: supcon")
    defaults = TrainSettings()
    for name in ("steps", "batch_size", "lr", "temperature", "tau_base", "seed"):
        value = getattr(defaults, name)
        t.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, help=f"default: {value}")
    t.add_argument("--no-color", action="store_true", help="augment without colour jitter and grayscale")
    t.add_argument("--held-out", type=float, default=0.25, help="fraction of frames (whole episodes) held out for the probe")
    p.add_argument("--quiet", action="store_true", help="plain lines instead of progress bars")
    return p


def make_driver(spec: str):
    if spec == "scripted":
        return ScriptedDriver()
    if spec == "random":
        return RandomDriver()
    run_dir = Path(spec)
    if not run_dir.is_dir():
        raise ValueError(f"--driver must be 'scripted', 'random' or a run folder; {spec} is none of these")
    cfg = es.read_config(run_dir)
    try:
        params = es.load_params(run_dir, "best")
    except es.CheckpointError:
        params = es.load_params(run_dir, "latest")
    problem = presets.problem_from_config(presets.from_saved(cfg, f"{run_dir}/config.json"))
    return AgentDriver(problem.policy, params)


class Progress:
    """A rich progress bar (or one line per tenth with --quiet) for collection and training."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar = quiet, None

    def __enter__(self):
        if not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

            self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[info]}"), TimeRemainingColumn())
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def task(self, description: str, total: int):
        """A callback (count, loss=None) that advances a bar of `total` steps."""
        if self.bar is not None:
            task = self.bar.add_task(description, total=total, info="")

            def update(count, loss=None):
                self.bar.update(task, completed=count, info="" if loss is None else f"loss {loss:.4f}")
            return update

        def line(count, loss=None):
            if count == total or count % max(1, total // 10) == 0:
                print(f"{description} {count}/{total}" + ("" if loss is None else f" loss {loss:.4f}"), flush=True)
        return line


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*CarRacing-v2 is not in Gymnasium.*")
    try:
        if args.out.suffix != ".pt":
            raise ValueError(f"--out must end in .pt (the .json goes beside it), got {args.out}")
        settings = TrainSettings(objective=args.objective, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                 temperature=args.temperature, tau_base=args.tau_base, seed=args.seed,
                                 augment=FrameAugment(brightness=0, contrast=0, saturation=0, hue=0, grayscale_p=0)
                                 if args.no_color else FrameAugment())
        with Progress(args.quiet) as progress:
            if args.use_dataset is not None:
                dataset = FrameDataset.load(args.use_dataset)
            else:
                driver = make_driver(args.driver)
                dataset = collect_frames(args.env_id, args.frames, driver, seed=args.seed,
                                         episode_frames=args.episode_frames,
                                         on_frame=progress.task("collecting frames", args.frames))
                dataset_path = args.dataset or args.out.with_suffix(".frames.npz")
                dataset.save(dataset_path)
                print(f"dataset: {len(dataset)} frames, {len(set(dataset.episodes.tolist()))} episodes -> {dataset_path}")
            if args.labels is not None:
                dataset = dataset.with_labels(read_label_column(args.labels))
            settings.check(dataset.labels is not None)
            desc = pretrain_encoder(dataset, args.encoder, settings, args.out, encoder_options=args.encoder_options,
                                    held_out=args.held_out, on_step=progress.task(f"{args.objective} {args.encoder}", args.steps))
    except (ValueError, es.UsageError) as e:
        parser.exit(2, f"pretrain.py: error: {e}\n")
    training = desc["training"]
    print(f"trained {args.encoder} with {args.objective}: loss {training['first_loss']:.3f} -> "
          f"{training['final_loss']:.3f} in {training['train_seconds']:.0f} s")
    if desc["probe"]:
        for name, result in desc["probe"].items():
            print(f"linear probe ({name} encoder): held-out accuracy {result['accuracy']:.3f} "
                  f"(majority class {result['majority']:.3f}, {result['num_test']} frames)")
    print(f"saved {args.out} (+ .json); evolve with: python scripts/evolve.py {args.env_id} "
          f"--encoder pretrained:{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
