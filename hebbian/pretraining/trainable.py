"""Encoders to pretrain, in torch: the same functions as the frozen encoders evolution uses.

`build_trainable(kind, seed, **options)` gives a `TrainableEncoder`: "cnn" is `TorchPaperCNN`,
a torch copy of the paper's Numba `PaperCNN`; "vit-<mechanism>" and "slots" train the torch
module of a `ViTEncoder` / `SlotEncoder` itself. Its `net.state_dict()` is what
`hebbian.encoders.pretrained.save_pretrained` writes and `pretrained:PATH` loads frozen.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from envs.car_racing import area_resize
from hebbian.encoders.slots import SlotEncoder
from hebbian.encoders.vit import ViTEncoder


class TorchPaperCNN(nn.Module):
    """The paper's CNN in torch, to train: (B, 3, 84, 84) -> (B, 648).

    conv 6@3x3 -> tanh -> maxpool 2 -> conv 8@5x5 stride 2 -> tanh -> maxpool 2 -> flatten, no
    biases: the same function as `PaperCNN` with params = conv1.weight then conv2.weight (C
    order), see `pretrained.cnn_flat_params`.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, bias=False)
        self.conv2 = nn.Conv2d(6, 8, 5, stride=2, bias=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.tanh(self.conv1(frames)), 2)
        x = nn.functional.max_pool2d(torch.tanh(self.conv2(x)), 2)
        return x.flatten(1)


class TrainableEncoder(nn.Module):
    """An encoder to pretrain: frames (B, C, H, W) -> features (B, num_features).

    Built by `build_trainable`. `net` is the module whose state dict is saved (and loads into
    the frozen encoder of `kind` with `options`); `features` computes what that frozen encoder
    will compute, in batches.
    """

    def __init__(self, kind: str, options: dict, net: nn.Module, obs_shape: tuple[int, ...], num_features: int,
                 slot_noise: torch.Tensor | None = None, seed: int = 0):
        super().__init__()
        self.kind, self.options, self.net = kind, dict(options), net
        self.obs_shape, self.num_features, self.seed = tuple(obs_shape), int(num_features), seed
        if slot_noise is not None:
            self.register_buffer("slot_noise", slot_noise, persistent=False)
        else:
            self.slot_noise = None

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if self.slot_noise is not None:
            return self.net(frames, self.slot_noise).flatten(1)
        return self.net(frames)

    @torch.no_grad()
    def features(self, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 frames (N, 3, S, S) at any size -> float32 (N, num_features), in eval mode.

        Reseeds torch's generator per batch with the encoder's seed, as the frozen ViT
        encoder does per frame, so mechanisms that draw at call time (LSH) hash alike.
        """
        was_training = self.training
        self.eval()
        out = []
        try:
            for start in range(0, len(frames), batch_size):
                x = area_resize(torch.from_numpy(frames[start:start + batch_size]), self.obs_shape[-1])
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    out.append(self(x).numpy())
        finally:
            self.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, self.num_features), np.float32)


def build_trainable(kind: str, seed: int = 0, **options) -> TrainableEncoder:
    """A trainable encoder of `kind` ("cnn", "vit-<mechanism>", "slots"), initialised from `seed`.

    `options` are the frozen encoder's keywords (ViTEncoder's / SlotEncoder's, e.g.
    image_size=64); "cnn" takes none. With no training, `features` equals the random frozen
    encoder with the same seed (the baseline of the benchmark).
    """
    if kind == "cnn":
        if options:
            raise ValueError(f"the cnn encoder takes no options, got {', '.join(options)}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = TorchPaperCNN()
        return TrainableEncoder("cnn", {}, net, (3, 84, 84), 648, seed=seed)
    for bad in ("weights", "evolve"):
        if bad in options:
            raise ValueError(f"option {bad!r} makes no sense for pretraining; leave it out")
    if kind.startswith("vit-"):
        frozen = ViTEncoder(kind[len("vit-"):], seed=seed, **options)
        noise = None
    elif kind == "slots":
        frozen = SlotEncoder(seed=seed, **options)
        noise = frozen.noise
    else:
        raise ValueError(f"unknown encoder {kind!r} for pretraining; choose cnn, vit-<mechanism> or slots")
    net = frozen.net.requires_grad_(True).train()
    return TrainableEncoder(kind, {**options, "seed": seed}, net, frozen.obs_shape, frozen.num_features,
                            slot_noise=noise, seed=seed)
