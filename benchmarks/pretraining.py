"""Linear-probe accuracy of frozen encoders: random versus SupCon, SimCLR and BYOL pretraining.

Frames: CarRacing driven by the scripted driver (`ScriptedDriver`: steers towards the track
a few tiles ahead, with random steering perturbations so the car is also seen off the racing
line). Label of a frame: the driver's discretised steering in that state (left / straight /
right), i.e. which way the scene says to steer. Held out: whole episodes (new tracks).

Every encoder is the paper's CNN (3x84x84 -> 648) from the same seed; the pretrained ones
train for the same number of steps and batch size, on the training episodes only. The probe
(multinomial logistic regression, see `hebbian.pretraining.probe.linear_probe`) is fitted
on all training frames and, to show the low-label regime where a representation matters
most, on `--few` labelled training frames. Writes benchmarks/results/pretraining.json and
prints a table; asserts nothing.

    python -m benchmarks.pretraining                       # default budget: a few minutes on 2 CPUs
    python -m benchmarks.pretraining --frames 600 --steps 20   # quick look
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.record import write_result
import torch

from hebbian.pretraining import (
    ScriptedDriver,
    TrainSettings,
    build_trainable,
    collect_frames,
    held_out_split,
    linear_probe,
    train_encoder,
)


def probe_both(features, labels, train_idx, test_idx, few: int, seed: int) -> dict:
    """Probe on all training frames and on `few` of them (a seeded random subset)."""
    full = linear_probe(features[train_idx], labels[train_idx], features[test_idx], labels[test_idx], seed=seed)
    subset = np.sort(np.random.default_rng(seed).choice(train_idx, size=min(few, len(train_idx)), replace=False))
    small = linear_probe(features[subset], labels[subset], features[test_idx], labels[test_idx], seed=seed)
    return {"accuracy": full["accuracy"], "accuracy_few": small["accuracy"], "majority": full["majority"],
            "train_accuracy": full["train_accuracy"], "l2": full["l2"], "l2_few": small["l2"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--episode-frames", type=int, default=200)
    parser.add_argument("--steps", type=int, default=150, help="training steps per objective")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--few", type=int, default=60, help="labelled frames of the low-label probe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pretraining.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*CarRacing-v2 is not in Gymnasium.*")

    t0 = time.perf_counter()
    dataset = collect_frames("CarRacing-v2", args.frames, ScriptedDriver(), seed=args.seed,
                             episode_frames=args.episode_frames)
    collect_s = time.perf_counter() - t0
    labels = dataset.labels
    train_idx, test_idx = held_out_split(dataset.episodes, 0.25)
    print(f"{len(dataset)} frames ({len(np.unique(dataset.episodes))} episodes) in {collect_s:.0f} s; "
          f"labels {dict(zip(dataset.label_names, np.bincount(labels, minlength=3).tolist()))}; "
          f"train {len(train_idx)}, held out {len(test_idx)}")

    rows = {}
    encoder = build_trainable("cnn", seed=args.seed)
    rows["random"] = {**probe_both(encoder.features(dataset.frames), labels, train_idx, test_idx, args.few, args.seed),
                      "train_s": 0.0, "final_loss": None}
    for objective in ("supcon", "simclr", "byol"):
        encoder = build_trainable("cnn", seed=args.seed)
        settings = TrainSettings(objective=objective, steps=args.steps, batch_size=args.batch_size, seed=args.seed)
        t0 = time.perf_counter()
        losses = train_encoder(encoder, dataset.frames[train_idx], labels[train_idx], settings)
        train_s = time.perf_counter() - t0
        rows[objective] = {**probe_both(encoder.features(dataset.frames), labels, train_idx, test_idx, args.few,
                                        args.seed),
                           "train_s": round(train_s, 1), "first_loss": losses[0],
                           "final_loss": float(np.mean(losses[-10:]))}
        print(f"  {objective}: {train_s:.0f} s, loss {losses[0]:.3f} -> {rows[objective]['final_loss']:.3f}")

    print(f"\nLinear probe, held-out episodes ({len(test_idx)} frames; majority class "
          f"{rows['random']['majority']:.3f})")
    print(f"{'encoder':<10} {'all labels':>11} {f'{args.few} labels':>11} {'train s':>8}")
    for name, row in rows.items():
        print(f"{name:<10} {row['accuracy']:>11.3f} {row['accuracy_few']:>11.3f} {row['train_s']:>8.0f}")

    data = {
        "benchmark": "pretraining",
        "settings": {**vars(args), "out": str(args.out), "encoder": "cnn", "labels": "scripted driver steering",
                     "train_settings": TrainSettings(steps=args.steps, batch_size=args.batch_size).to_dict()},
        "dataset": {"frames": len(dataset), "episodes": int(len(np.unique(dataset.episodes))),
                    "train": int(len(train_idx)), "held_out": int(len(test_idx)),
                    "label_counts": np.bincount(labels, minlength=3).tolist(), "collect_s": round(collect_s, 1)},
        "results": rows,
        "threads": args.threads,
    }
    write_result(args.out, data, indent=1)


if __name__ == "__main__":
    main()
