"""FAVOR+ (Choromanski et al. 2021, "Rethinking Attention with Performers").

The softmax kernel exp(q.k) equals E_w[phi(q) phi(k)] for w ~ N(0, I) and the positive
random features phi(x) = exp(w.x - |x|^2 / 2) / sqrt(m). Positive features keep the
estimated normaliser positive (trigonometric features do not), and drawing the w in
orthogonal blocks lowers the estimator's variance. Queries and keys are scaled by d^-1/4
first, so the kernel is exp(q.k / sqrt(d)) as in exact attention.
"""
from __future__ import annotations

import math

import torch

from hebbian.encoders.attention.common import MultiHeadAttention, masked_max
from hebbian.encoders.attention.linear import EPS, kernel_attention


def iid_gaussian_features(num_features: int, dim: int, generator: torch.Generator | None = None,
                          dtype=torch.float32) -> torch.Tensor:
    """Independent w ~ N(0, I): (num_features, dim)."""
    return torch.randn(num_features, dim, generator=generator, dtype=dtype)


def orthogonal_gaussian_features(num_features: int, dim: int, generator: torch.Generator | None = None,
                                 dtype=torch.float32) -> torch.Tensor:
    """Rows orthogonal within each block of `dim`, with Gaussian-like norms: (num_features, dim).

    Each block is the Q of a QR decomposition of a Gaussian matrix (uniformly random
    orthonormal rows); every row is then rescaled to the norm of an independent Gaussian
    vector, so each row alone is still distributed as N(0, I) and the estimator stays unbiased.
    """
    blocks = []
    for _ in range(math.ceil(num_features / dim)):
        g = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
        q, r = torch.linalg.qr(g)
        q = q * torch.sign(torch.diagonal(r))[None, :]  # make Q Haar-distributed
        blocks.append(q.T)
    w = torch.cat(blocks)[:num_features]
    norms = torch.randn(num_features, dim, generator=generator, dtype=torch.float64).norm(dim=1)
    return (w * norms[:, None]).to(dtype)


def softmax_kernel_features(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Unstabilised positive random features exp(w.x - |x|^2/2) / sqrt(m).

    x: (..., n, d); w: (m, d). Returns (..., n, m); phi(q) . phi(k) estimates exp(q . k).
    """
    m = w.shape[0]
    return torch.exp(x @ w.T - 0.5 * (x * x).sum(-1, keepdim=True)) / math.sqrt(m)


def favor_features(x: torch.Tensor, w: torch.Tensor, is_query: bool,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """Numerically stabilised FAVOR+ features of queries or keys.

    The exponent is shifted before exp: per query row for queries (the shift cancels in
    that query's ratio), by one global max over visible keys and features for keys (the
    same factor multiplies numerator and normaliser of every query). x: (b, h, n, d) already
    scaled by d^-1/4; mask: bool (b, n) True = key kept. Returns (b, h, n, m).
    """
    m = w.shape[0]
    logits = x @ w.T - 0.5 * (x * x).sum(-1, keepdim=True)
    if is_query:
        shift = logits.amax(dim=-1, keepdim=True)
    else:
        keep = None if mask is None else mask[:, None, :, None]
        shift = masked_max(logits, keep, dims=(-1, -2))
    # The shift is a constant of the estimator, not of the parameters: keeping it out of the
    # graph avoids a gradient through max that cancels anyway.
    return torch.exp(logits - shift.detach()) / math.sqrt(m)


def favor_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, w: torch.Tensor,
                    mask: torch.Tensor | None = None, causal: bool = False, eps: float = EPS) -> torch.Tensor:
    """FAVOR+ estimate of softmax(q k^T / sqrt(d)) v.

    q, k: (b, h, n, d); v: (b, h, n, dv); w: (m, d) random features; mask: bool (b, n).
    Returns (b, h, n, dv).
    """
    scale = q.shape[-1] ** -0.25
    phi_q = favor_features(q * scale, w, is_query=True)
    phi_k = favor_features(k * scale, w, is_query=False, mask=mask)
    return kernel_attention(phi_q, phi_k, v, mask, causal, eps)


class FavorAttention(MultiHeadAttention):
    """Multi-head FAVOR+ attention, (batch, n, dim) -> (batch, n, dim).

    Options:
        num_features: random features m per head (default round(d log d), the paper's choice).
        orthogonal: draw w in orthogonal blocks (default True).
        causal: prefix-sum form (default False).
        seed: seed of the feature draws; None uses torch's global generator.
    The features are a buffer (saved with the weights, shared by all heads); `redraw_features()`
    draws new ones, e.g. every few hundred training steps as the paper does.
    """

    def __init__(self, dim: int, heads: int, num_features: int | None = None, orthogonal: bool = True,
                 causal: bool = False, seed: int | None = None, dim_head: int | None = None, eps: float = EPS):
        super().__init__(dim, heads, dim_head)
        d = self.dim_head
        self.num_features = num_features or max(1, round(d * math.log(d)))
        self.orthogonal, self.causal, self.eps = orthogonal, causal, eps
        self._generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.register_buffer("features", torch.empty(self.num_features, d))
        self.redraw_features()

    @torch.no_grad()
    def redraw_features(self) -> None:
        """Replace the random features w (num_features, dim_head) with a fresh draw."""
        draw = orthogonal_gaussian_features if self.orthogonal else iid_gaussian_features
        w = draw(self.num_features, self.dim_head, self._generator)
        self.features.copy_(w.to(self.features.device, self.features.dtype))

    def attend(self, q, k, v, mask):
        return favor_attention(q, k, v, self.features.to(q.dtype), mask, self.causal, self.eps)
