"""Contrastive pretraining of frame encoders: collect a dataset, train, probe, save.

    dataset = collect_frames("CarRacing-v2", 3000, ScriptedDriver(), seed=0)   # or FrameDataset.load
    dataset.save("frames.npz")
    desc = pretrain_encoder(dataset, "cnn", TrainSettings(objective="supcon", steps=500), "encoders/cnn-supcon.pt")
    # -> encoders/cnn-supcon.pt + .json, usable as --encoder pretrained:encoders/cnn-supcon.pt

Modules, each importing what it needs at the top (this package sits above `hebbian.agent`
and `hebbian.encoders`, neither of which imports it):
    drivers     who acts while frames are collected (scripted, random, an evolved agent), labels
    dataset     `FrameDataset` (the .npz file), `collect_frames`, user labels, held-out split
    trainable   encoders in torch (`TorchPaperCNN`, `build_trainable`) matching the frozen ones
    training    `TrainSettings`, `train_encoder` (SupCon / SimCLR / BYOL), `pretrain_encoder`
    probe       `linear_probe`: held-out accuracy of a linear classifier on frozen features
Frames reach an encoder through `envs.car_racing.area_resize`, the env's own resize.
Radioactive marking of a dataset is `hebbian.radioactive`.
"""
from hebbian.pretraining.dataset import (
    DATASET_FORMAT,
    NATIVE_FRAME,
    FrameDataset,
    collect_frames,
    held_out_split,
    read_label_column,
)
from hebbian.pretraining.drivers import (
    STEERING_LABELS,
    AgentDriver,
    RandomDriver,
    ScriptedDriver,
    discretize_steering,
)
from hebbian.pretraining.probe import fit_logistic, linear_probe
from hebbian.pretraining.trainable import (
    TorchPaperCNN,
    TrainableEncoder,
    build_trainable,
)
from hebbian.pretraining.training import (
    OBJECTIVES,
    TrainSettings,
    pretrain_encoder,
    train_encoder,
)

__all__ = [
    "DATASET_FORMAT",
    "NATIVE_FRAME",
    "OBJECTIVES",
    "STEERING_LABELS",
    "AgentDriver",
    "FrameDataset",
    "RandomDriver",
    "ScriptedDriver",
    "TorchPaperCNN",
    "TrainSettings",
    "TrainableEncoder",
    "build_trainable",
    "collect_frames",
    "discretize_steering",
    "fit_logistic",
    "held_out_split",
    "linear_probe",
    "pretrain_encoder",
    "read_label_column",
    "train_encoder",
]
