"""Linformer (Wang et al. 2020): project keys and values along the sequence to k rows.

K' = E K and V' = F V with E, F of shape (k, n), then exact softmax attention of the n
queries over the k projected keys: O(n k) instead of O(n^2). The projections are stored as
(seq_len, k) matrices, E = proj_k[:n].T, so an input shorter than `seq_len` uses their first
n rows (positions beyond the input simply do not exist).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from hebbian.encoders.attention.common import MultiHeadAttention
from hebbian.encoders.attention.softmax import softmax_attention


def linformer_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        proj_k: torch.Tensor, proj_v: torch.Tensor,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q (E k)^T / sqrt(d)) (F v) with E = proj_k[:n].T, F = proj_v[:n].T.

    Args:
        q, k: (b, h, n, d); v: (b, h, n, dv); proj_k, proj_v: (seq_len >= n, kdim).
        mask: bool (b, n), True = key kept. Hidden keys and values are zeroed before the
            projection, and a projected row that mixes no visible key at all (e.g. with the
            identity projection) is itself hidden, so hidden keys enter no normaliser.
    Returns:
        (b, h, n, dv).
    """
    n = k.shape[-2]
    if n > proj_k.shape[0]:
        raise ValueError(f"sequence length {n} exceeds linformer seq_len {proj_k.shape[0]}")
    e, f = proj_k[:n], proj_v[:n]
    row_mask = None
    if mask is not None:
        keep = mask[:, None, :, None].to(k.dtype)
        k, v = k * keep, v * keep
        # Projected row r is visible when some visible position has a non-zero weight in it.
        row_mask = (mask.to(e.dtype) @ (e != 0).to(e.dtype)) > 0  # (b, kdim)
    k_proj = torch.einsum("bhnd,nk->bhkd", k, e)
    v_proj = torch.einsum("bhnd,nk->bhkd", v, f)
    return softmax_attention(q, k_proj, v_proj, row_mask)


class LinformerAttention(MultiHeadAttention):
    """Multi-head Linformer attention, (batch, n <= seq_len, dim) -> (batch, n, dim).

    Options: `seq_len` (maximum length), `k` (projected length, default 64), `share_kv`
    (one projection for keys and values, default False). Projections are shared by heads,
    initialised N(0, 1/seq_len) so that a projected key, a mix of up to seq_len keys, keeps the
    scale of a single key.
    """

    def __init__(self, dim: int, heads: int, seq_len: int, k: int = 64, share_kv: bool = False,
                 dim_head: int | None = None):
        super().__init__(dim, heads, dim_head)
        self.seq_len, self.k, self.share_kv = seq_len, k, share_kv
        self.proj_k = nn.Parameter(torch.randn(seq_len, k) / math.sqrt(seq_len))
        self.proj_v = None if share_kv else nn.Parameter(torch.randn(seq_len, k) / math.sqrt(seq_len))

    def attend(self, q, k, v, mask):
        proj_v = self.proj_k if self.share_kv else self.proj_v
        return linformer_attention(q, k, v, self.proj_k, proj_v, mask)
