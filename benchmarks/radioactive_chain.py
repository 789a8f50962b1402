"""Why radioactive detection has no power here: the chain from marks to detection, link by link.

Detection needs three things to hold at once (Sablayrolles et al. 2020, section 4):
  1. the marks move the marking network phi along the carriers, and a linear classifier on
     phi's features, trained on the marked frames, inherits the carriers (the positive
     control: no second network, no alignment);
  2. training the suspect psi on the marked frames leaves a trace of the marks in what the
     test reads: in the paper the classifier's rows W_k; in the issue's design a linear
     probe of psi fitted on the owner's clean frames;
  3. psi's response to the marks is a linear function of phi's, so that the least-squares
     alignment psi ~= phi B maps that trace back onto the carriers.

Frames: CarRacing, scripted driver, steering labels (as benchmarks.radioactive). One marked
dataset (--fraction of the frames), one random paper CNN as the marking network. Every
suspect is trained twice from the same seed and batches, on the marked and on the clean
frames, so the only difference between the two is the marks. Rows:

  frozen-marker classifier   link 1: logistic regression on phi(frames), read directly.
  supcon, probe on clean     the issue's pipeline: SupCon pretraining, `detect`.
  cross-entropy, classifier  the paper's: encoder + linear head trained by cross-entropy on
                             the labels, the head's rows aligned through B (link 2 + 3).
  ... fine-tuned from phi    the same, starting from the marking network's weights.

and, for the cross-entropy suspect, the two diagnostics of links 2 and 3:
  imprint   cos(W_k, m_k) in psi's own space, W_k the head's row k minus the mean row (softmax
            ignores a shift shared by all rows), m_k = mean psi(x~) - psi(x) over the marked
            frames of class k: did the head learn the marks as class evidence?
  align R2  fraction of the variance of psi(x~) - psi(x) over the marked frames explained by
            (phi(x~) - phi(x)) B, with B fitted on the clean frames and on copies with
            uniform noise of +-epsilon (independent of the carriers, so the test stays exact);
            align corr, the correlation of the two, is the same question up to scale.
  visible   held-out accuracy of a linear probe predicting the label from psi(x~) - psi(x)
            alone, for the suspect trained on clean frames: are the marks visible to an
            encoder that never saw one?

Writes benchmarks/results/radioactive_chain.json and prints a table; asserts nothing.

    python -m benchmarks.radioactive_chain                 # about 3 minutes on 2 CPUs
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.record import write_result
import torch
from torch import nn

from benchmarks.radioactive import steering_frames
from envs.car_racing import area_resize
from hebbian.encoders.augment import FrameAugment
from hebbian.pretraining import (
    TrainSettings,
    build_trainable,
    linear_probe,
    train_encoder,
)
from hebbian.radioactive import (
    MarkSettings,
    align,
    detect,
    mark,
    probe_directions,
    score,
)


def train_classifier(encoder, frames, labels, steps, batch_size, seed, lr=1e-3):
    """Train encoder + a linear head by cross-entropy on augmented frames; returns the head weights (K, D)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(encoder.num_features, int(labels.max()) + 1)
    encoder.net.requires_grad_(True).train()
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    augment, targets = FrameAugment(), torch.from_numpy(labels)
    for _ in range(steps):
        idx = torch.randint(0, len(frames), (batch_size,), generator=generator)
        x = augment(area_resize(torch.from_numpy(frames[idx.numpy()]), encoder.obs_shape[-1]), generator)
        loss = nn.functional.cross_entropy(head(encoder(x)), targets[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    encoder.eval()
    return head.weight.detach().numpy().astype(np.float64)


def noisy_copies(frames, epsilon, copies, seed):
    """The frames and `copies` copies with independent uniform integer noise in [-epsilon, epsilon]."""
    rng = np.random.default_rng(seed)
    bound = int(epsilon)
    noisy = [np.clip(frames.astype(np.int16) + rng.integers(-bound, bound + 1, frames.shape), 0, 255).astype(np.uint8)
             for _ in range(copies)]
    return np.concatenate([frames, *noisy])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1200)
    parser.add_argument("--episode-frames", type=int, default=150)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--epsilon", type=float, default=16.0, help="L-infinity bound, pixel units 0..255")
    parser.add_argument("--mark-steps", type=int, default=40)
    parser.add_argument("--supcon-steps", type=int, default=300)
    parser.add_argument("--ce-steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--marker-seed", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "radioactive_chain.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    dataset = steering_frames(args.frames, args.episode_frames, args.seed)
    frames, labels = dataset.frames, dataset.labels
    num_classes = int(labels.max()) + 1
    marker = build_trainable("cnn", seed=args.marker_seed)
    marked = mark(frames, labels, marker, args.fraction, args.epsilon, args.seed + 1, MarkSettings(steps=args.mark_steps))
    carriers, idx = marked.carriers, marked.indices
    versions = {"marked": marked.frames, "clean": frames}
    rows = []

    def row(name, pvalues, **extra):
        rows.append({"setting": name, **{f"p_{k}": float(v) for k, v in pvalues.items()}, **extra})
        print(f"{name:34s} p marked {pvalues['marked']:.3g}   p clean {pvalues['clean']:.3g}   "
              + "  ".join(f"{k} {v}" for k, v in extra.items()), flush=True)

    # Link 1: the marking network itself, a classifier on its features, no alignment.
    row("frozen-marker classifier", {name: score(probe_directions(marker.features(fr), labels, num_classes)[0],
                                                 carriers).pvalue for name, fr in versions.items()})

    # The pipeline.
    settings = TrainSettings(objective="supcon", steps=args.supcon_steps, batch_size=args.batch_size, seed=args.seed)
    supcon = {}
    for name, fr in versions.items():
        encoder = build_trainable("cnn", seed=args.seed)
        train_encoder(encoder, fr, labels, settings)
        supcon[name] = detect(encoder, marked.key, frames, labels, marking_encoder=marker).pvalue
    row("supcon, probe on clean frames", supcon)

    # The paper's setting: a classifier trained on the (marked) frames, its rows aligned.
    alignment_frames = noisy_copies(frames, args.epsilon, 3, args.seed + 2)
    phi_alignment = marker.features(alignment_frames)
    phi_response = marker.features(marked.frames[idx]).astype(np.float64) - marker.features(frames[idx])
    for label, init in (("cross-entropy, classifier", None), ("... fine-tuned from phi", marker.net.state_dict())):
        pvalues, extra = {}, {}
        for name, fr in versions.items():
            encoder = build_trainable("cnn", seed=args.seed)
            if init is not None:
                encoder.net.load_state_dict(init)
            weights = train_classifier(encoder, fr, labels, args.ce_steps, args.batch_size, args.seed)
            b = align(phi_alignment, encoder.features(alignment_frames))
            pvalues[name] = score((b @ weights.T).T, carriers).pvalue
            response = encoder.features(marked.frames[idx]).astype(np.float64) - encoder.features(frames[idx])
            means = np.stack([response[labels[idx] == k].mean(0) for k in range(num_classes)])
            centred = weights - weights.mean(0)
            imprint = np.einsum("kd,kd->k", centred, means) / (np.linalg.norm(centred, axis=1)
                                                                * np.linalg.norm(means, axis=1))
            predicted = phi_response @ b
            extra[f"imprint_{name}"] = [round(float(c), 3) for c in imprint]
            extra[f"align_r2_{name}"] = round(float(1 - ((response - predicted) ** 2).sum()
                                                    / ((response - response.mean(0)) ** 2).sum()), 3)
            extra[f"align_corr_{name}"] = round(float(np.corrcoef(response.ravel(), predicted.ravel())[0, 1]), 3)
            if name == "clean" and init is None:
                half = np.arange(len(idx)) % 2 == 0
                extra["visible_clean"] = round(linear_probe(response[half], labels[idx][half], response[~half],
                                                            labels[idx][~half])["accuracy"], 3)
        row(label, pvalues, **extra)

    print(f"PSNR {marked.psnr.mean():.1f} dB, {len(idx)} marked frames")
    write_result(args.out, {"benchmark": "radioactive_chain", "settings": {**vars(args), "out": str(args.out)},
                            "psnr_mean": float(marked.psnr.mean()), "marked": len(idx),
                            "feature_shift": float(marked.shift.mean()),
                            "labels": np.bincount(labels, minlength=num_classes).tolist(), "rows": rows,
                            "seconds": round(time.perf_counter() - start, 1)}, indent=1)


if __name__ == "__main__":
    main()
