"""Contrastive pretraining of an encoder on frames, and the whole step: train, probe, save.

    dataset = collect_frames("CarRacing-v2", 3000, ScriptedDriver(), seed=0)   # hebbian.pretraining.dataset
    desc = pretrain_encoder(dataset, "cnn", TrainSettings(objective="supcon", steps=500), "encoders/cnn-supcon.pt")
    # -> encoders/cnn-supcon.pt + .json, usable as --encoder pretrained:encoders/cnn-supcon.pt

`train_encoder`: every step draws a batch from a seeded generator, makes two augmented views
(`FrameAugment`) and minimises
    supcon   `supcon_loss` over projector outputs with the frame labels,
    simclr   the same without labels (NT-Xent),
    byol     `BYOL` (online predictor regressing an EMA target),
with Adam. Only the encoder is saved; the projector / predictor are dropped.
`pretrain_encoder` trains on the training episodes and, with labels, reports the held-out
accuracy of a linear probe (`probe.linear_probe`) on the trained and on the untrained encoder.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from envs.car_racing import area_resize
from hebbian.encoders.augment import FrameAugment
from hebbian.encoders.contrastive import BYOL, mlp_head, supcon_loss
from hebbian.encoders.pretrained import save_pretrained
from hebbian.pretraining.dataset import FrameDataset, held_out_split
from hebbian.pretraining.probe import linear_probe
from hebbian.pretraining.trainable import TrainableEncoder, build_trainable

OBJECTIVES = ("supcon", "simclr", "byol")


@dataclass
class TrainSettings:
    """Hyperparameters of `train_encoder` (all recorded in the description).

    objective: "supcon", "simclr" or "byol". steps, batch_size, lr (Adam), weight_decay.
    temperature: SupCon / NT-Xent tau. projection_dim, hidden_dim: projector (and predictor) widths.
    tau_base: BYOL's starting EMA rate (cosine schedule to 1). seed: batches, augmentations, heads.
    augment: FrameAugment settings.
    """

    objective: str = "supcon"
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-6
    temperature: float = 0.1
    projection_dim: int = 64
    hidden_dim: int = 256
    tau_base: float = 0.996
    seed: int = 0
    augment: FrameAugment = field(default_factory=FrameAugment)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["augment"] = self.augment.to_dict()
        return d

    def check(self, labelled: bool) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if self.objective == "supcon" and not labelled:
            raise ValueError("supcon needs labelled frames; collect with a labelling driver, pass --labels, "
                             "or use simclr / byol")
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError("steps must be >= 1 and batch_size >= 2 (the heads use batch statistics)")


def train_encoder(encoder: TrainableEncoder, frames: np.ndarray, labels: np.ndarray | None,
                  settings: TrainSettings, on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Train `encoder` in place with `settings.objective` on uint8 frames (N, 3, S, S).

    labels: int (N,) (needed for supcon, ignored otherwise). on_step(step, loss) after each
    step (1-based). Returns the loss of every step.
    """
    settings.check(labels is not None)
    n = len(frames)
    if n < 2:
        raise ValueError(f"pretraining needs at least 2 frames, got {n}")
    batch_size = min(settings.batch_size, n)
    generator = torch.Generator().manual_seed(settings.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        if settings.objective == "byol":
            model = BYOL(encoder, encoder.num_features, settings.projection_dim, settings.hidden_dim,
                         tau_base=settings.tau_base, total_steps=settings.steps)
            params = model.online_params()
        else:
            head = mlp_head(encoder.num_features, settings.hidden_dim, settings.projection_dim)
            model = nn.ModuleDict({"encoder": encoder, "head": head})
            params = list(model.parameters())
    model.train()
    optimizer = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    label_tensor = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
    order, cursor = torch.randperm(n, generator=generator), 0
    losses = []
    for step in range(settings.steps):
        if cursor + batch_size > n:  # a fresh permutation per epoch: every frame seen once per epoch
            order, cursor = torch.randperm(n, generator=generator), 0
        idx = order[cursor:cursor + batch_size]
        cursor += batch_size
        x = area_resize(torch.from_numpy(frames[idx.numpy()]), encoder.obs_shape[-1])
        view1, view2 = settings.augment(x, generator), settings.augment(x, generator)
        if settings.objective == "byol":
            loss = model(view1, view2)
        else:
            z = model["head"](encoder(torch.cat([view1, view2])))
            z = torch.stack(z.split(len(idx)), dim=1)  # (B, 2 views, projection_dim)
            batch_labels = label_tensor[idx] if settings.objective == "supcon" else None
            loss = supcon_loss(z, batch_labels, settings.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if settings.objective == "byol":
            model.update_target(step)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"the {settings.objective} loss became {value} at step {step + 1}; lower the learning rate")
        losses.append(value)
        if on_step is not None:
            on_step(step + 1, value)
    encoder.eval()
    return losses


# -- the whole step ----------------------------------------------------------------------------
def pretrain_encoder(dataset: FrameDataset, kind: str, settings: TrainSettings, out_path: str | os.PathLike | None,
                     encoder_options: dict | None = None, held_out: float = 0.25, probe_random: bool = True,
                     on_step: Callable[[int, float], None] | None = None) -> dict:
    """Pretrain an encoder of `kind` on `dataset`, probe it, save it to `out_path` (.pt + .json).

    Training uses only the training episodes (`held_out_split`); when the dataset has labels
    the linear probe reports held-out accuracy of the trained features and, with
    `probe_random`, of the untrained encoder (same seed) as the baseline. `out_path=None`
    skips saving and returns the description with the trained TrainableEncoder under
    "_encoder"; otherwise returns the description as written to OUT's .json.
    """
    labels = dataset.labels
    settings.check(labels is not None)
    encoder = build_trainable(kind, seed=settings.seed, **(encoder_options or {}))
    if labels is not None:
        train_idx, test_idx = held_out_split(dataset.episodes, held_out)
    else:
        train_idx, test_idx = np.arange(len(dataset)), np.arange(0)
    probe = {}
    if labels is not None and probe_random:
        feats = encoder.features(dataset.frames)
        probe["random"] = linear_probe(feats[train_idx], labels[train_idx], feats[test_idx], labels[test_idx],
                                       seed=settings.seed)
    start = time.perf_counter()
    losses = train_encoder(encoder, dataset.frames[train_idx], None if labels is None else labels[train_idx],
                           settings, on_step)
    train_seconds = time.perf_counter() - start
    if labels is not None:
        feats = encoder.features(dataset.frames)
        probe["pretrained"] = linear_probe(feats[train_idx], labels[train_idx], feats[test_idx], labels[test_idx],
                                           seed=settings.seed)
    extra = {
        "objective": settings.objective,
        "training": {**settings.to_dict(), "train_seconds": round(train_seconds, 2),
                     "first_loss": losses[0], "final_loss": float(np.mean(losses[-10:]))},
        "dataset": {**dataset.meta, "num_frames": len(dataset), "num_train": int(len(train_idx)),
                    "num_held_out": int(len(test_idx))},
        "probe": probe or None,
    }
    if out_path is None:
        return {"kind": encoder.kind, "options": encoder.options, **extra, "_encoder": encoder}
    return save_pretrained(out_path, encoder.net.state_dict(), encoder.kind, encoder.options,
                           encoder.obs_shape, encoder.num_features, extra)
