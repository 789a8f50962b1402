"""Slot Attention (Locatello et al. 2020, "Object-Centric Learning with Slot Attention") and an
encoder that turns a frame into a few slot vectors.

Slots compete for input features: the softmax runs over slots (not over inputs, as in
ordinary attention), so every input feature is divided among the slots; each slot then
takes the weighted mean of the inputs it won and updates itself with a GRU and a residual
MLP. Permuting the inputs leaves the slots unchanged; permuting the initial slots permutes
the result.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from hebbian.encoders.attention.common import bind_flat_params, num_parameters


class SlotAttention(nn.Module):
    """Slot Attention module: inputs (batch, n, input_dim) -> slots (batch, num_slots, dim).

    Args:
        num_slots: number of slots S. dim: slot width D. iters: refinement iterations (3).
        input_dim: width of the inputs (default `dim`). hidden_dim: MLP width (default 2*dim).
        eps: added to the attention before renormalising over inputs, so that a slot that
            wins nothing still takes a finite (uniform) mean.
    """

    def __init__(self, num_slots: int, dim: int, iters: int = 3, input_dim: int | None = None,
                 hidden_dim: int | None = None, eps: float = 1e-8):
        super().__init__()
        input_dim = input_dim or dim
        hidden_dim = hidden_dim or 2 * dim
        self.num_slots, self.dim, self.iters, self.eps = num_slots, dim, iters, eps
        self.scale = dim ** -0.5
        # Learned Gaussian of initial slots (shared by all slots; samples break the symmetry).
        self.slots_mu = nn.Parameter(torch.randn(1, 1, dim) * dim ** -0.5)
        self.slots_log_sigma = nn.Parameter(torch.full((1, 1, dim), math.log(dim ** -0.5)))
        self.norm_inputs = nn.LayerNorm(input_dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(input_dim, dim, bias=False)
        self.to_v = nn.Linear(input_dim, dim, bias=False)
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, dim))

    def sample_slots(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised draw mu + sigma * noise: (batch, num_slots, dim)."""
        noise = torch.randn(batch, self.num_slots, self.dim, generator=generator,
                            dtype=self.slots_mu.dtype, device=self.slots_mu.device)
        return self.slots_mu + self.slots_log_sigma.exp() * noise

    def forward(self, inputs: torch.Tensor, slots_init: torch.Tensor | None = None,
                return_attn: bool = False, generator: torch.Generator | None = None):
        """Args:
            inputs: (batch, n, input_dim).
            slots_init: (batch, num_slots, dim) starting slots; default a draw of the learned
                Gaussian (from `generator` or torch's global one).
            return_attn: also return the last iteration's attention (batch, n, num_slots),
                the softmax over slots (each row sums to one), before renormalisation.
        Returns:
            slots (batch, num_slots, dim) [, attention].
        """
        b = inputs.shape[0]
        slots = self.sample_slots(b, generator) if slots_init is None else slots_init
        inputs = self.norm_inputs(inputs)
        k, v = self.to_k(inputs), self.to_v(inputs)  # (b, n, D)
        attn = None
        for _ in range(self.iters):
            slots_prev = slots
            q = self.to_q(self.norm_slots(slots))  # (b, S, D)
            logits = torch.einsum("bnd,bsd->bns", k, q) * self.scale
            attn = logits.softmax(dim=-1)  # competition: over slots
            weights = attn + self.eps
            weights = weights / weights.sum(dim=1, keepdim=True)  # weighted mean over inputs
            updates = torch.einsum("bns,bnd->bsd", weights, v)
            slots = self.gru(updates.reshape(-1, self.dim), slots_prev.reshape(-1, self.dim)).view(b, -1, self.dim)
            slots = slots + self.mlp(self.norm_mlp(slots))
        return (slots, attn) if return_attn else slots


def position_grid(height: int, width: int) -> torch.Tensor:
    """(height*width, 4) coordinates [y, x, 1-y, 1-x] in [0, 1] (the paper's soft position embedding input)."""
    ys = torch.linspace(0.0, 1.0, height)
    xs = torch.linspace(0.0, 1.0, width)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([y, x], dim=-1).reshape(-1, 2)
    return torch.cat([grid, 1.0 - grid], dim=-1)


class SlotEncoder:
    """Frame -> `num_slots` slot vectors, flattened, as features.

    Architecture (defaults): (3, 96, 96) -> conv 3->32 5x5 s2 -> ReLU -> conv 32->32 5x5 s2 ->
    ReLU -> conv 32->32 5x5 s2 -> ReLU (32 x 12 x 12; padding 2) -> + soft position embedding
    (linear 4 -> 32 of the pixel grid) -> LayerNorm -> MLP 32->32->32 -> SlotAttention(4 slots,
    32 wide, 3 iterations) -> 4 x 32 = 128 features. 69,888 weights in all (`num_weights`):
    convolutions 53,696, position/LayerNorm/MLP 2,336, Slot Attention 13,856.

    The initial slots are fixed: the learned mean plus sigma times noise drawn once from
    `seed`, so the same frame always gives the same features (evolution needs a
    deterministic encoder) while the slots still start apart.

    Parameters: frozen by default (`num_params` = 0), either random from `seed` or loaded
    from `weights` (a state dict saved with `torch.save`, read with `weights_only=True`, e.g.
    from contrastive pretraining). With `evolve=True` every weight is evolved instead
    (`num_params` = `num_weights`), bound as views of the agent's flat vector.
    """

    def __init__(self, image_size: int = 96, channels: int = 3, num_slots: int = 4, dim: int = 32,
                 iters: int = 3, seed: int = 0, weights: str | None = None, evolve: bool = False):
        self.obs_shape = (channels, image_size, image_size)
        # Weights and slot noise both derive from `seed`; forking keeps torch's global
        # generator untouched for whoever builds the encoder.
        g = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = SlotNet(image_size, channels, num_slots, dim, iters)
        if weights is not None:
            self.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.net.eval().requires_grad_(False)
        self.noise = torch.randn(1, num_slots, dim, generator=g)
        self.num_features = num_slots * dim
        self.num_weights = num_parameters(self.net)
        self.evolve = evolve
        self.num_params = self.num_weights if evolve else 0

    def set_params(self, flat: np.ndarray) -> None:
        """Bind `flat` (float32, (num_params,)) as the network's weights (views, no copy)."""
        if not self.evolve:
            if np.size(flat):
                raise ValueError("this slot encoder is frozen (num_params = 0); pass evolve=True to evolve it")
            return
        bind_flat_params(self.net, flat)

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """(3, 96, 96) float32 in [0, 1] -> float32 (num_slots * dim,)."""
        if obs.shape != self.obs_shape:
            raise ValueError(f"expected an observation of shape {self.obs_shape}, got {obs.shape}")
        with torch.inference_mode():
            frame = torch.as_tensor(obs, dtype=torch.float32)[None]
            slots = self.net(frame, self.noise)
            return slots.reshape(-1).numpy().copy()


class SlotNet(nn.Module):
    """The trainable part of `SlotEncoder`: frames (batch, C, H, W) -> slots (batch, S, D)."""

    def __init__(self, image_size: int = 96, channels: int = 3, num_slots: int = 4, dim: int = 32, iters: int = 3):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, dim, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(dim, dim, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(dim, dim, 5, stride=2, padding=2), nn.ReLU(),
        )
        side = image_size
        for _ in range(3):
            side = (side + 2 * 2 - 5) // 2 + 1
        self.register_buffer("grid", position_grid(side, side), persistent=False)
        self.position = nn.Linear(4, dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.slot_attention = SlotAttention(num_slots, dim, iters)

    def forward(self, frames: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """`noise` (1 or batch, S, D) fixes the initial slots as mu + sigma * noise."""
        feats = self.conv(frames).flatten(2).transpose(1, 2)  # (b, h*w, D)
        feats = self.mlp(self.norm(feats + self.position(self.grid)))
        slots_init = None
        if noise is not None:
            sa = self.slot_attention
            slots_init = (sa.slots_mu + sa.slots_log_sigma.exp() * noise).expand(frames.shape[0], -1, -1)
        return self.slot_attention(feats, slots_init)
