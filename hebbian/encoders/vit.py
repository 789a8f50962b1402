"""A small patch transformer whose token mixing is any mechanism of `make_attention`.

`--encoder vit-<mechanism>` (e.g. `vit-linformer`) builds a `ViTEncoder`; the module
itself, `ViT`, is what contrastive pretraining trains. Default: (3, 96, 96) frame -> 8x8
patches (144 tokens of width 64) + learned positions -> 2 pre-norm blocks (attention, MLP
x2) -> LayerNorm -> mean over tokens -> 64 features.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hebbian.encoders.attention import MECHANISMS, make_attention
from hebbian.encoders.attention.common import bind_flat_params, num_parameters
from hebbian.encoders.attention.reversible import FeedForward, PreNorm, ReversibleTransformer


class Block(nn.Module):
    """Pre-norm residual block: x + attn(LN x), then + MLP(LN x). (b, n, dim) -> (b, n, dim)."""

    def __init__(self, dim: int, attention: nn.Module, ff_mult: int):
        super().__init__()
        self.attn = PreNorm(dim, attention)
        self.ff = PreNorm(dim, FeedForward(dim, ff_mult))

    def forward(self, x, mask=None):
        x = x + (self.attn(x) if mask is None else self.attn(x, mask=mask))
        return x + self.ff(x)


class ViT(nn.Module):
    """Frames (batch, C, H, W) -> pooled features (batch, dim).

    Args:
        mechanism: a name of `make_attention`. attention_options: its options; for linformer
            `seq_len` defaults to the number of patches and `k` to min(64, patches).
        reversible: Reformer-style reversible blocks (activation memory independent of depth).
    """

    def __init__(self, mechanism: str, image_size: int = 96, channels: int = 3, patch_size: int = 8,
                 dim: int = 64, depth: int = 2, heads: int = 4, ff_mult: int = 2, reversible: bool = False,
                 attention_options: dict | None = None):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        if mechanism not in MECHANISMS:
            raise ValueError(f"unknown attention {mechanism!r}; choose one of: {', '.join(MECHANISMS)}")
        self.num_tokens = (image_size // patch_size) ** 2
        options = dict(attention_options or {})
        if mechanism == "linformer":
            options.setdefault("seq_len", self.num_tokens)
            options.setdefault("k", min(64, self.num_tokens))
        if mechanism == "lsh":
            options.setdefault("bucket_size", 16)
        self.embed = nn.Conv2d(channels, dim, patch_size, stride=patch_size)
        self.position = nn.Parameter(torch.randn(1, self.num_tokens, dim) * 0.02)
        factory = lambda: make_attention(mechanism, dim, heads, **options)
        if reversible:
            self.blocks = ReversibleTransformer(dim, depth, factory, ff_mult)
        else:
            self.blocks = nn.ModuleList([Block(dim, factory(), ff_mult) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)

    def tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """(b, C, H, W) -> token features after the blocks, (b, num_tokens, dim)."""
        x = self.embed(frames).flatten(2).transpose(1, 2) + self.position
        if isinstance(self.blocks, ReversibleTransformer):
            x = self.blocks(x)
        else:
            for block in self.blocks:
                x = block(x)
        return self.norm(x)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.tokens(frames).mean(dim=1)


class ViTEncoder:
    """Encoder wrapper of `ViT` (see `make_vit_encoder`).

    Frozen by default (`num_params` = 0): random from `seed`, or loaded from `weights` (a
    state dict, read with `weights_only=True`). `evolve=True` evolves every weight instead.
    Encoding reseeds a forked torch generator with `seed`, so mechanisms that draw at call
    time (LSH rotations) hash the same way every step: the encoder is deterministic.
    """

    def __init__(self, mechanism: str, image_size: int = 96, channels: int = 3, patch_size: int = 8,
                 dim: int = 64, depth: int = 2, heads: int = 4, ff_mult: int = 2, reversible: bool = False,
                 seed: int = 0, weights: str | None = None, evolve: bool = False, **attention_options):
        self.mechanism, self.seed, self.evolve = mechanism, seed, evolve
        self.obs_shape = (channels, image_size, image_size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = ViT(mechanism, image_size, channels, patch_size, dim, depth, heads, ff_mult,
                           reversible, attention_options)
        if weights is not None:
            self.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.net.eval().requires_grad_(False)
        self.num_features = dim
        self.num_weights = num_parameters(self.net)
        self.num_params = self.num_weights if evolve else 0

    def set_params(self, flat: np.ndarray) -> None:
        """Bind `flat` (float32, (num_params,)) as the network's weights (views, no copy)."""
        if not self.evolve:
            if np.size(flat):
                raise ValueError("this ViT encoder is frozen (num_params = 0); pass evolve=True to evolve it")
            return
        bind_flat_params(self.net, flat)

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """(C, H, W) float32 in [0, 1] -> float32 (dim,)."""
        if obs.shape != self.obs_shape:
            raise ValueError(f"expected an observation of shape {self.obs_shape}, got {obs.shape}")
        with torch.inference_mode(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self.net(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy().copy()


def make_vit_encoder(mechanism: str, **options) -> ViTEncoder:
    """`vit-<mechanism>`: a `ViTEncoder` mixing tokens with `mechanism`; `options` as ViTEncoder's
    keywords, anything else goes to the attention mechanism (e.g. n_hashes=2, num_features=32)."""
    return ViTEncoder(mechanism, **options)
