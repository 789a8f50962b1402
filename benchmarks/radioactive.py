"""Radioactive frames: detection p-value against the marked fraction, with a clean control and PSNR.

Frames: CarRacing, scripted driver, labels = its discretised steering (as benchmarks.pretraining).
Marking network: the paper CNN from --marker-seed (random, fixed). For every fraction the
dataset is marked (epsilon in pixel units), the paper CNN is SupCon-pretrained on the marked
frames (`train_encoder`, the project's pretraining; same seed and steps for every row), and
`detect` tests it on the clean frames. The control row trains on the clean frames. Writes
benchmarks/results/radioactive.json and prints a table; asserts nothing.

    python -m benchmarks.radioactive                        # default budget: a few minutes on 2 CPUs
    python -m benchmarks.radioactive --frames 600 --steps 50    # quick look
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
    train_encoder,
)
from hebbian.radioactive import MarkSettings, detect, mark


def steering_frames(num_frames: int, episode_frames: int, seed: int):
    """The radioactive benchmarks' dataset: CarRacing frames of the scripted driver, labelled by its steering."""
    warnings.filterwarnings("ignore", message=".*CarRacing-v2 is not in Gymnasium.*")
    return collect_frames("CarRacing-v2", num_frames, ScriptedDriver(), seed=seed, episode_frames=episode_frames,
                          skip_start=20)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1200)
    parser.add_argument("--episode-frames", type=int, default=150)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.02, 0.05, 0.1, 0.2])
    parser.add_argument("--epsilon", type=float, default=16.0, help="L-infinity bound, pixel units 0..255")
    parser.add_argument("--mark-steps", type=int, default=40)
    parser.add_argument("--steps", type=int, default=150, help="pretraining steps per encoder")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--marker-seed", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "radioactive.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    dataset = steering_frames(args.frames, args.episode_frames, args.seed)
    marker = build_trainable("cnn", seed=args.marker_seed)
    settings = TrainSettings(objective="supcon", steps=args.steps, batch_size=args.batch_size, seed=args.seed)

    def trained_on(frames):
        encoder = build_trainable("cnn", seed=args.seed)
        start = time.perf_counter()
        train_encoder(encoder, frames, dataset.labels, settings)
        return encoder, time.perf_counter() - start

    rows = []
    clean, train_s = trained_on(dataset.frames)
    for fraction in [0.0, *args.fractions]:
        row = {"fraction": fraction}
        if fraction == 0.0:
            encoder = clean
            key = mark(dataset.frames, dataset.labels, marker, args.fractions[-1], args.epsilon, args.seed + 1,
                       MarkSettings(steps=1)).key  # any key: the control never saw a mark
        else:
            start = time.perf_counter()
            marked = mark(dataset.frames, dataset.labels, marker, fraction, args.epsilon, args.seed + 1,
                          MarkSettings(steps=args.mark_steps))
            row.update(mark_s=round(time.perf_counter() - start, 1), marked=len(marked.indices),
                       psnr_mean=float(marked.psnr.mean()), psnr_min=float(marked.psnr.min()),
                       max_abs_change=int(np.abs(marked.frames.astype(int) - dataset.frames).max()),
                       feature_shift=float(marked.shift.mean()))
            key = marked.key
            encoder, train_s = trained_on(marked.frames)
            # The control: the clean encoder against this fraction's key.
            row["control_pvalue"] = detect(clean, key, dataset.frames, dataset.labels, marking_encoder=marker).pvalue
        result = detect(encoder, key, dataset.frames, dataset.labels, marking_encoder=marker)
        row.update(pvalue=result.pvalue, cosines=result.cosines, train_s=round(train_s, 1))
        rows.append(row)
        print(f"fraction {fraction:5.2f}: p {result.pvalue:.3g}  control p {row.get('control_pvalue', float('nan')):.3g}"
              f"  PSNR {row.get('psnr_mean', float('nan')):.1f} dB", flush=True)

    print("\n| marked | frames | detection p | clean control p | PSNR mean / min (dB) | max change |")
    print("|---|---|---|---|---|---|")
    for row in rows[1:]:
        print(f"| {row['fraction']:.0%} | {row['marked']} | {row['pvalue']:.3g} | {row['control_pvalue']:.3g} | "
              f"{row['psnr_mean']:.1f} / {row['psnr_min']:.1f} | {row['max_abs_change']} |")
    write_result(args.out, {"benchmark": "radioactive", "settings": {**vars(args), "out": str(args.out)}, "rows": rows,
                            "labels": np.bincount(dataset.labels, minlength=3).tolist()}, indent=1)


if __name__ == "__main__":
    main()
