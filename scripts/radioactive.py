#!/usr/bin/env python
"""Radioactive frames: mark a frame dataset, or test whether an encoder was trained on it.

    python scripts/radioactive.py mark frames.npz --fraction 0.1 --out marked.npz --key frames.key.json
    python scripts/radioactive.py detect encoders/cnn-supcon.pt --key frames.key.json --frames frames.npz

`mark` writes the marked dataset (same format, uint8; publish this one) and the key (JSON:
seed, carriers, marking network and its checksum; keep it secret) and prints the PSNR of the
marks. `detect` takes the *clean* dataset (the owner's original frames and labels) and prints
the combined p-value, the per-class cosines and a one-line verdict; exit status 0 either way.
The marking network is a seeded random encoder of --marker's kind, or a pretrained encoder
file (.pt written by scripts/pretrain.py). See hebbian/radioactive.py.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import _checkout  # noqa: F401  (first: the packages imported below must be this checkout's)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("mark", help="mark a fraction of a dataset's frames")
    m.add_argument("dataset", type=Path, help="labelled frame dataset (.npz from scripts/pretrain.py)")
    m.add_argument("--fraction", type=float, default=0.1, help="fraction of frames to mark (default 0.1)")
    m.add_argument("--epsilon", type=float, default=16.0, help="L-infinity bound in pixel units 0..255 (default 16)")
    m.add_argument("--out", type=Path, required=True, help="marked dataset to write (.npz)")
    m.add_argument("--key", type=Path, required=True, help="key file to write (.json; keep it secret)")
    m.add_argument("--marker", default="cnn", help="marking network: an encoder kind (seeded random; default cnn) "
                                                   "or a pretrained encoder file (.pt)")
    m.add_argument("--marker-seed", type=int, default=0, help="seed of a random marking network (default 0)")
    m.add_argument("--seed", type=int, default=0, help="picks the frames, draws the carriers (default 0)")
    m.add_argument("--steps", type=int, default=None, help="optimisation steps per frame batch")
    d = sub.add_parser("detect", help="test whether an encoder was trained on the marked frames")
    d.add_argument("encoder", type=Path, help="the encoder to test (.pt written by scripts/pretrain.py)")
    d.add_argument("--key", type=Path, required=True, help="the key written by `mark`")
    d.add_argument("--frames", type=Path, required=True, help="the clean (unmarked) labelled dataset")
    d.add_argument("--marker", type=Path, help="the marking network's file if it moved since marking")
    d.add_argument("--alpha", type=float, default=1e-3, help="significance level of the verdict (default 1e-3)")
    d.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Imported after parsing (start-up cost only): --help and usage errors answer without loading torch.
    import torch

    from hebbian import radioactive as ra
    from hebbian.pretraining import FrameDataset, build_trainable

    torch.set_num_threads(1)
    try:
        if args.command == "mark":
            if args.out.suffix != ".npz" or args.key.suffix != ".json":
                raise ValueError("--out must end in .npz and --key in .json")
            dataset = FrameDataset.load(args.dataset)
            if dataset.labels is None:
                raise ValueError(f"{args.dataset} has no labels; marking needs one class per frame "
                                 "(collect with a labelling driver or relabel it with scripts/pretrain.py --labels)")
            if args.marker.endswith(".pt") or args.marker.endswith(".json"):
                marker, marker_path = ra.trainable_from_file(args.marker), args.marker
            else:
                marker, marker_path = build_trainable(args.marker, seed=args.marker_seed), None
            settings = ra.MarkSettings() if args.steps is None else ra.MarkSettings(steps=args.steps)
            result = ra.mark(dataset.frames, dataset.labels, marker, args.fraction, args.epsilon, args.seed,
                             settings=settings, marker_path=marker_path, label_names=dataset.label_names)
            meta = {**dataset.meta, "radioactive": {"fraction": args.fraction, "epsilon": args.epsilon}}
            FrameDataset(result.frames, dataset.episodes, dataset.actions, dataset.labels, meta).save(args.out)
            ra.write_key(args.key, result.key)
            print(f"marked {len(result.indices)} of {len(dataset)} frames (epsilon {args.epsilon:g}/255) -> {args.out}")
            print(f"PSNR of the marked frames: mean {result.psnr.mean():.1f} dB, min {result.psnr.min():.1f} dB")
            print(f"key (keep it secret) -> {args.key}")
        else:
            key = ra.read_key(args.key)
            dataset = FrameDataset.load(args.frames)
            if dataset.labels is None:
                raise ValueError(f"{args.frames} has no labels; detection needs the labels the frames were marked with")
            encoder = ra.trainable_from_file(args.encoder)
            marker = ra.load_marker(key["marker"], args.marker)
            result = ra.detect(encoder, key, dataset.frames, dataset.labels, marking_encoder=marker, alpha=args.alpha)
            if args.json:
                print(json.dumps(result.to_dict()))
            else:
                cosines = ", ".join(f"{c:+.3f}" for c in result.cosines)
                print(f"combined p-value {result.pvalue:.3g} (Fisher, {len(result.cosines)} classes, d = {result.dim}"
                      f"{', aligned by least squares' if result.aligned else ''}); cosines {cosines}")
                print(result.verdict)
    except ValueError as e:
        parser.exit(2, f"radioactive.py: error: {e}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
