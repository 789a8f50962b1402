"""Exact scaled dot-product attention: the reference every other mechanism is checked against.

Written out (scores, softmax, weighted sum) rather than calling a fused kernel, so that its
time and saved-for-backward memory show the O(n^2) attention matrix honestly in the benchmark.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from hebbian.encoders.attention.common import MultiHeadAttention


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      mask: torch.Tensor | None = None, causal: bool = False,
                      dropout: nn.Module | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v.

    Args:
        q, k: (batch, heads, n, d); v: (batch, heads, n, dv).
        mask: bool (batch, n), True = key kept. Hidden keys get weight exactly 0; a query with
            no visible key gets a zero output instead of NaN.
        causal: query i sees keys j <= i only.
    Returns:
        (batch, heads, n, dv).
    """
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    keep = None
    if mask is not None:
        keep = mask[:, None, None, :]
    if causal:
        n = q.shape[-2]
        tri = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
        keep = tri if keep is None else keep & tri
    if keep is not None:
        # finfo.min, not -inf: a row with no visible key stays finite, then is zeroed below.
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    probs = scores.softmax(dim=-1)
    if keep is not None:
        probs = probs * keep
    if dropout is not None:
        probs = dropout(probs)
    return torch.matmul(probs, v)


class SoftmaxAttention(MultiHeadAttention):
    """Multi-head exact attention, (batch, n, dim) -> (batch, n, dim).

    Options: `causal` (default False), `dropout` on the attention weights (default 0).
    """

    def __init__(self, dim: int, heads: int, causal: bool = False, dropout: float = 0.0,
                 dim_head: int | None = None):
        super().__init__(dim, heads, dim_head)
        self.causal = causal
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def attend(self, q, k, v, mask):
        return softmax_attention(q, k, v, mask, self.causal, self.dropout)
