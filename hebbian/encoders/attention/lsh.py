"""Reformer LSH attention (Kitaev et al. 2020).

Queries and keys share one projection (keys are the unit-normalised queries), so a token is
similar to itself and angular LSH puts similar tokens in the same bucket. One hashing round:
draw a random rotation R (d x b/2), bucket = argmax([xR; -xR]), sort tokens by (bucket,
position), cut the sorted sequence into chunks of `bucket_size` and let every query attend to
its own chunk and the previous one. Attending to oneself is blocked (a shared query-key always
scores highest with itself) unless nothing else is visible. Several rounds with fresh
rotations are combined with weights proportional to exp(log-sum-exp of each round's scores),
which makes the result the softmax over the union of the keys seen in any round; with
`dedup` (the paper's N_ij correction) a key seen in several rounds counts once.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hebbian.encoders.attention.common import check_mask, head_width, merge_heads, split_heads

# Score given to a token's own key (the paper's 1e5) and to hidden keys (far below it, so a
# query whose window holds only hidden keys and itself still attends to itself).
SELF_SCORE = -1e5
HIDDEN_SCORE = -1e9


def hash_buckets(x: torch.Tensor, n_hashes: int, n_buckets: int,
                 rotations: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Angular LSH: (b, n, d) -> int64 buckets (b, n_hashes, n) in [0, n_buckets).

    A fresh Gaussian rotation (d, n_hashes, n_buckets/2) per round unless `rotations` is given.
    `n_buckets` = 1 puts everything in one bucket (then sorting keeps the positional order).
    """
    b, n, d = x.shape
    if n_buckets == 1:
        return torch.zeros(b, n_hashes, n, dtype=torch.long, device=x.device)
    if n_buckets % 2:
        raise ValueError(f"n_buckets must be 1 or even, got {n_buckets}")
    if rotations is None:
        rotations = torch.randn(d, n_hashes, n_buckets // 2, dtype=x.dtype, device=x.device,
                                generator=generator)
    rotated = torch.einsum("bnd,drk->brnk", x, rotations.to(x.dtype))
    return torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)


def _look_one_back(x: torch.Tensor) -> torch.Tensor:
    """(b, r, chunks, c, ...) -> (b, r, chunks, 2c, ...): each chunk followed by the previous
    chunk of the same round (the first chunk wraps around to the last)."""
    return torch.cat([x, x.roll(1, dims=2)], dim=3)


def lsh_attention(qk: torch.Tensor, v: torch.Tensor, n_hashes: int = 4, n_buckets: int | None = None,
                  bucket_size: int = 64, mask: torch.Tensor | None = None,
                  rotations: torch.Tensor | None = None, dedup: bool = True,
                  dropout: nn.Module | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Multi-round LSH attention with a shared query-key.

    Args:
        qk: (b, n, d) shared queries/keys (keys are normalised here); v: (b, n, dv).
        n_hashes: rounds (at most 255). n_buckets: buckets per round (1 or even); default the number of
            chunks, at least 2, rounded up to even (the paper's n / bucket_size).
        bucket_size: chunk length; any n works (the input is padded to a whole number of
            chunks with hidden tokens).
        mask: bool (b, n), True = key kept. Hidden tokens are put in an extra last bucket, so
            where the visible tokens land does not depend on what the hidden ones contain.
        rotations: fixed (d, n_hashes, n_buckets/2) rotations instead of fresh draws.
        dedup: count a key seen in several rounds once (subtract log of its round count).
    Returns:
        (b, n, dv).
    """
    b, n, d = qk.shape
    if not 1 <= n_hashes <= 255:  # the round counts of `dedup` are uint8
        raise ValueError(f"n_hashes must be in 1..255, got {n_hashes}")
    chunk = min(bucket_size, n)
    n_chunks = math.ceil(n / chunk)
    length = n_chunks * chunk
    if length != n or mask is None:
        keep = torch.ones(b, length, dtype=torch.bool, device=qk.device)
        if mask is not None:
            keep[:, :n] = mask
        keep[:, n:] = False
        qk = F.pad(qk, (0, 0, 0, length - n))
        v = F.pad(v, (0, 0, 0, length - n))
    else:
        keep = mask
    if n_buckets is None:
        n_buckets = max(2, n_chunks + n_chunks % 2)

    with torch.no_grad():
        buckets = hash_buckets(qk.detach(), n_hashes, n_buckets, rotations, generator)
        buckets = buckets.masked_fill(~keep[:, None, :], n_buckets)
        pos = torch.arange(length, device=qk.device)
        # Unique sort keys, so the order is fully determined: by bucket, then by position.
        order = (buckets * length + pos).argsort(dim=-1)  # (b, r, L) sorted slot -> token
        undo = order.argsort(dim=-1)                        # token -> sorted slot

    def gather(t):  # (b, L, e) -> (b, r, chunks, chunk, e) in sorted order
        idx = order[..., None].expand(-1, -1, -1, t.shape[-1])
        s = t[:, None].expand(-1, n_hashes, -1, -1).gather(2, idx)
        return s.reshape(b, n_hashes, n_chunks, chunk, t.shape[-1])

    q_s = gather(qk)
    k_s = F.normalize(q_s, dim=-1)
    v_s = gather(v)
    pos_q = order.reshape(b, n_hashes, n_chunks, chunk)
    pos_k = pos_q
    if n_chunks > 1:  # one chunk already sees everything; looking back would count keys twice
        k_s, v_s, pos_k = _look_one_back(k_s), _look_one_back(v_s), _look_one_back(pos_k)

    dots = torch.einsum("brcie,brcje->brcij", q_s, k_s) / math.sqrt(d)
    with torch.no_grad():
        if dedup and n_hashes > 1:
            # N_ij = number of rounds in which key j is in query i's window (>= 1 here).
            # Small integer types: these comparisons run over (rounds^2 x n x window) entries.
            chunk_of = (undo // chunk).to(torch.int32)  # (b, r', L)
            count = torch.zeros(dots.shape, dtype=torch.uint8, device=dots.device)
            flat_q, flat_k = pos_q.reshape(b, -1), pos_k.reshape(b, -1)
            for r2 in range(n_hashes):
                cq = chunk_of[:, r2].gather(1, flat_q).view(pos_q.shape)[..., :, None]
                ck = chunk_of[:, r2].gather(1, flat_k).view(pos_k.shape)[..., None, :]
                seen = cq == ck
                if n_chunks > 1:
                    seen |= (cq - 1) % n_chunks == ck
                count += seen
            log_count = count.to(dots.dtype).log_()
        visible = keep.gather(1, pos_k.reshape(b, -1)).view(pos_k.shape)[..., None, :]
        is_self = pos_q[..., :, None] == pos_k[..., None, :]
    if dedup and n_hashes > 1:
        dots = dots - log_count
    dots = dots.masked_fill(~visible, HIDDEN_SCORE).masked_fill(is_self, SELF_SCORE)

    lse = dots.logsumexp(dim=-1, keepdim=True)
    probs = torch.exp(dots - lse)
    if dropout is not None:
        probs = dropout(probs)
    out = torch.einsum("brcij,brcje->brcie", probs, v_s).reshape(b, n_hashes, length, -1)
    lse = lse.reshape(b, n_hashes, length, 1)

    # Back to token order, then combine rounds: weight_r = exp(lse_r) / sum_r' exp(lse_r').
    out = out.gather(2, undo[..., None].expand(-1, -1, -1, out.shape[-1]))
    lse = lse.gather(2, undo[..., None])
    weights = lse.softmax(dim=1)
    return (out * weights).sum(dim=1)[:, :n]


class LSHAttention(nn.Module):
    """Multi-head Reformer attention, (batch, n, dim) -> (batch, n, dim).

    Options: `n_hashes` (rounds, default 4), `bucket_size` (chunk length, default 64),
    `n_buckets` (default derived from n), `dedup` (default True), `dropout` on the weights,
    `seed` (fixed hashing: the rotations are drawn from a generator reseeded every call, for
    deterministic acting; default None = fresh rotations from torch's global generator, which
    the reversible blocks replay in their backward).
    """

    def __init__(self, dim: int, heads: int, n_hashes: int = 4, bucket_size: int = 64,
                 n_buckets: int | None = None, dedup: bool = True, dropout: float = 0.0,
                 seed: int | None = None, dim_head: int | None = None):
        super().__init__()
        dim_head = head_width(dim, heads, dim_head)
        self.dim, self.heads, self.dim_head = dim, heads, dim_head
        self.n_hashes, self.bucket_size, self.n_buckets = n_hashes, bucket_size, n_buckets
        self.dedup, self.seed = dedup, seed
        self.to_qk = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_v = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = check_mask(mask, x)
        b, n, _ = x.shape
        h = self.heads
        # Fold heads into the batch. The rotations of one call are shared, but every head hashes
        # its own projection, so the heads still bucket differently.
        qk = split_heads(self.to_qk(x), h).reshape(b * h, n, self.dim_head)
        v = split_heads(self.to_v(x), h).reshape(b * h, n, self.dim_head)
        if mask is not None:
            mask = mask.repeat_interleave(h, dim=0)
        generator = None if self.seed is None else torch.Generator(device=x.device).manual_seed(self.seed)
        out = lsh_attention(qk, v, self.n_hashes, self.n_buckets, self.bucket_size, mask,
                            dedup=self.dedup, dropout=self.dropout, generator=generator)
        return self.to_out(merge_heads(out.view(b, h, n, self.dim_head)))
