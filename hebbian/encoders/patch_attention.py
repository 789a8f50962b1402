"""Self-attention bottleneck of Tang et al. 2020 ("Neuroevolution of Self-Interpretable
Agents"): the agent sees only where the most important patches of the frame are.

Exact choices (the paper's CarRacing setting):
- input: the full frame, float32 (3, 96, 96) in [0, 1], RGB, no resizing;
- patches: 7 x 7 at stride 4, no padding -> 23 x 23 = 529 patches, each flattened
  channel-major (c, row, col) to 147 numbers (the order of `torch.nn.functional.unfold`);
- query and key: affine maps 147 -> 4 (`nn.Linear` with bias, as in the authors' code):
  2 x (147 x 4 + 4) = 1,184 evolved parameters, laid out in the flat vector as
  [W_q (4x147, row-major), b_q (4), W_k (4x147), b_k (4)];
- attention A = softmax(Q K^T / sqrt(4)) over keys (rows sum to one); patch importance = the
  attention each patch receives, the column sums of A;
- features: the centres of the 10 most important patches, most important first, as
  (row, col) pixel coordinates divided by 95 (the last pixel index), so in [0, 1]:
  20 features [r_1, c_1, r_2, c_2, ...]. Ties are broken by the lower patch index (stable
  sort), so the encoder is deterministic.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from hebbian.encoders.attention.common import bind_flat_params

# Fixed by the paper; options are kept so that other frame sizes can reuse the bottleneck.
DEFAULTS = dict(image_size=96, channels=3, patch_size=7, stride=4, dim=4, top_k=10)


class PatchAttentionEncoder:
    """Patch self-attention bottleneck: (3, 96, 96) -> 20 features, 1,184 evolved parameters.

    Options: image_size=96, channels=3, patch_size=7, stride=4, dim=4 (query/key width),
    top_k=10, seed=0 (initial parameters before `set_params`, from `initial_params(seed)`).
    """

    def __init__(self, image_size: int = 96, channels: int = 3, patch_size: int = 7, stride: int = 4,
                 dim: int = 4, top_k: int = 10, seed: int = 0):
        self.image_size, self.channels = image_size, channels
        self.patch_size, self.stride, self.dim, self.top_k = patch_size, stride, dim, top_k
        self.grid = (image_size - patch_size) // stride + 1
        self.num_patches = self.grid * self.grid
        if not 0 < top_k <= self.num_patches:
            raise ValueError(f"top_k must be in 1..{self.num_patches}, got {top_k}")
        self.patch_dim = channels * patch_size * patch_size
        self.obs_shape = (channels, image_size, image_size)
        self.num_features = 2 * top_k
        self.num_params = 2 * (self.patch_dim * dim + dim)
        self.query = torch.nn.Linear(self.patch_dim, dim)
        self.key = torch.nn.Linear(self.patch_dim, dim)
        self.query.requires_grad_(False)
        self.key.requires_grad_(False)
        # Patch centres in pixels, normalised by the last pixel index; patch p is at
        # grid row p // grid, column p % grid, its centre offset (patch_size - 1) / 2.
        idx = torch.arange(self.num_patches)
        offset = (patch_size - 1) / 2
        centres = torch.stack([idx // self.grid, idx % self.grid], dim=1) * stride + offset
        self.centres = (centres / (image_size - 1)).to(torch.float32)
        self.set_params(self.initial_params(seed))

    def initial_params(self, seed: int) -> np.ndarray:
        """PyTorch's default Linear initialisation, U(-1/sqrt(147), 1/sqrt(147)), from `seed`."""
        bound = 1.0 / math.sqrt(self.patch_dim)
        return np.random.default_rng(seed).uniform(-bound, bound, self.num_params).astype(np.float32)

    def set_params(self, flat: np.ndarray) -> None:
        """Use `flat` (float32, (1184,)) as [W_q, b_q, W_k, b_k], as views where possible."""
        self._flat = flat  # keep the buffer alive for the views
        bind_flat_params(torch.nn.ModuleList([self.query, self.key]), flat)

    def patches(self, frame: torch.Tensor) -> torch.Tensor:
        """(channels, H, W) -> (num_patches, patch_dim), patches in row-major grid order."""
        cols = F.unfold(frame[None], kernel_size=self.patch_size, stride=self.stride)  # (1, 147, 529)
        return cols[0].T

    def importance(self, frame: torch.Tensor) -> torch.Tensor:
        """Attention each patch receives: column sums of softmax(Q K^T / sqrt(dim)), (num_patches,)."""
        x = self.patches(frame)
        q, k = self.query(x), self.key(x)
        attn = torch.softmax(q @ k.T / math.sqrt(self.dim), dim=-1)
        return attn.sum(dim=0)

    def top_patches(self, frame: torch.Tensor) -> torch.Tensor:
        """Indices of the `top_k` most important patches, most important first (stable on ties)."""
        return torch.sort(self.importance(frame), descending=True, stable=True).indices[: self.top_k]

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """(3, 96, 96) float32 in [0, 1] -> float32 (20,) normalised (row, col) of the top patches."""
        if obs.shape != self.obs_shape:
            raise ValueError(f"expected an observation of shape {self.obs_shape}, got {obs.shape}")
        with torch.inference_mode():
            frame = torch.as_tensor(obs, dtype=torch.float32)
            top = self.top_patches(frame)
            return self.centres[top].reshape(-1).numpy().copy()
