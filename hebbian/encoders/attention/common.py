"""Pieces every attention mechanism shares: head splitting, key-mask handling, projections.

Shapes: `x` is (batch, tokens, dim); per-head tensors are (batch, heads, tokens, dim_head);
a key padding mask is bool (batch, tokens) with True = keep.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(batch, tokens, heads * d) -> (batch, heads, tokens, d)."""
    b, n, hd = x.shape
    return x.view(b, n, heads, hd // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, heads, tokens, d) -> (batch, tokens, heads * d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def check_mask(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """Validate a key padding mask against `x` (batch, tokens, dim); return it as bool or None."""
    if mask is None:
        return None
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask must have shape (batch, tokens) = {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
    return mask.to(torch.bool)


def masked_max(x: torch.Tensor, keep: torch.Tensor | None, dims: tuple[int, ...]) -> torch.Tensor:
    """Max of `x` over `dims` (kept as size 1) counting only entries where `keep` (broadcastable) is True.

    Used for numerical stabilisers: a hidden key must not set the shift, or a large hidden
    value could underflow every visible one. Where nothing is kept the result is 0.
    """
    if keep is not None:
        x = x.masked_fill(~keep, float("-inf"))
    m = x.amax(dim=dims, keepdim=True)
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


def head_width(dim: int, heads: int, dim_head: int | None) -> int:
    """Width of one head: `dim_head` if given, else dim / heads (which must divide)."""
    if dim_head is not None:
        return dim_head
    if dim % heads:
        raise ValueError(f"dim {dim} is not divisible by heads {heads}; pass dim_head")
    return dim // heads


class MultiHeadAttention(nn.Module):
    """Base for the mechanisms: q, k, v and output projections around a per-head kernel.

    Subclasses implement `attend(q, k, v, mask) -> out` on (batch, heads, tokens, dim_head)
    tensors. `forward(x, mask=None)` maps (batch, tokens, dim) -> (batch, tokens, dim).
    """

    def __init__(self, dim: int, heads: int, dim_head: int | None = None, bias: bool = False):
        super().__init__()
        dim_head = head_width(dim, heads, dim_head)
        self.dim, self.heads, self.dim_head = dim, heads, dim_head
        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner, bias=bias)
        self.to_k = nn.Linear(dim, inner, bias=bias)
        self.to_v = nn.Linear(dim, inner, bias=bias)
        self.to_out = nn.Linear(inner, dim)

    def attend(self, q, k, v, mask):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = check_mask(mask, x)
        q, k, v = (split_heads(f(x), self.heads) for f in (self.to_q, self.to_k, self.to_v))
        return self.to_out(merge_heads(self.attend(q, k, v, mask)))


def bind_flat_params(module: nn.Module, flat: np.ndarray) -> None:
    """Make every parameter of `module` a view into `flat` (float32, (num_params,)), in
    `module.parameters()` order, without copying when `flat` is contiguous float32.

    This is how evolved encoders take their slice of the agent's parameter vector: the ES
    writes new numbers into the same buffer, and the module sees them with no copy.
    """
    flat = np.asarray(flat)
    if flat.dtype != np.float32 or not flat.flags.c_contiguous:
        flat = np.ascontiguousarray(flat, dtype=np.float32)
    total = sum(p.numel() for p in module.parameters())
    if flat.shape != (total,):
        raise ValueError(f"expected {total} parameters, got shape {flat.shape}")
    with warnings.catch_warnings():
        # A read-only buffer (e.g. from shared memory) is fine: acting never writes to it.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        t = torch.from_numpy(flat)
    offset = 0
    for p in module.parameters():
        p.data = t[offset: offset + p.numel()].view_as(p)
        offset += p.numel()


def num_parameters(module: nn.Module) -> int:
    """Number of scalar parameters in `module`."""
    return sum(p.numel() for p in module.parameters())
