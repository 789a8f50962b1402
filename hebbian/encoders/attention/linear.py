"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs").

With a positive feature map phi(x) = elu(x) + 1, softmax(q k^T) is replaced by
phi(q) phi(k)^T, and the product is regrouped as phi(q) (phi(k)^T v): O(n d^2) instead of
O(n^2 d). The causal form is a prefix sum, i.e. an RNN with state S = sum phi(k) v^T and
Z = sum phi(k), which `LinearAttention.step` runs one token at a time for acting.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from hebbian.encoders.attention.common import MultiHeadAttention, merge_heads

EPS = 1e-6


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = elu(x) + 1 > 0 elementwise."""
    return F.elu(x) + 1.0


def kernel_attention(phi_q: torch.Tensor, phi_k: torch.Tensor, v: torch.Tensor,
                     mask: torch.Tensor | None = None, causal: bool = False,
                     eps: float = EPS) -> torch.Tensor:
    """Attention with a factorised kernel: out_i = phi_q_i . S_i / (phi_q_i . Z_i + eps).

    S_i = sum_j phi_k_j v_j^T and Z_i = sum_j phi_k_j, over all visible keys j (non-causal)
    or visible j <= i (causal). Shared by linear attention and FAVOR+.

    Args:
        phi_q, phi_k: non-negative features (batch, heads, n, m); v: (batch, heads, n, dv).
        mask: bool (batch, n), True = key kept; hidden keys are zeroed so they enter neither S
            nor the normaliser Z.
        causal: prefix sums over keys (parallel form; O(n m dv) memory for the running S).
    Returns:
        (batch, heads, n, dv).
    """
    if mask is not None:
        phi_k = phi_k * mask[:, None, :, None].to(phi_k.dtype)
    if causal:
        s = torch.einsum("bhnm,bhnd->bhnmd", phi_k, v).cumsum(dim=2)
        z = phi_k.cumsum(dim=2)
        num = torch.einsum("bhnm,bhnmd->bhnd", phi_q, s)
        den = (phi_q * z).sum(-1, keepdim=True)
    else:
        s = torch.einsum("bhnm,bhnd->bhmd", phi_k, v)
        z = phi_k.sum(dim=2)
        num = torch.einsum("bhnm,bhmd->bhnd", phi_q, s)
        den = torch.einsum("bhnm,bhm->bhn", phi_q, z)[..., None]
    return num / (den + eps)


class LinearAttention(MultiHeadAttention):
    """Multi-head linear attention with phi = elu + 1, (batch, n, dim) -> (batch, n, dim).

    Options: `causal` (default False). `step` is the recurrent form of the causal layer.
    """

    def __init__(self, dim: int, heads: int, causal: bool = False, dim_head: int | None = None,
                 eps: float = EPS):
        super().__init__(dim, heads, dim_head)
        self.causal, self.eps = causal, eps

    def attend(self, q, k, v, mask):
        return kernel_attention(elu_feature_map(q), elu_feature_map(k), v, mask, self.causal, self.eps)

    def initial_state(self, batch: int, dtype=torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Empty recurrent state: S (batch, heads, d, d) and Z (batch, heads, d), both zero."""
        d = self.dim_head
        return (torch.zeros(batch, self.heads, d, d, dtype=dtype, device=device),
                torch.zeros(batch, self.heads, d, dtype=dtype, device=device))

    def step(self, x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
             keep: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One causal step: x_t (batch, dim) -> (y_t (batch, dim), new state).

        Equals row t of `forward(x, causal=True)` given the state after rows < t.
        `keep` (bool (batch,)) False means this token is padding: it is not added to the state.
        """
        b = x_t.shape[0]
        if state is None:
            state = self.initial_state(b, x_t.dtype, x_t.device)
        s, z = state
        h, d = self.heads, self.dim_head
        q = elu_feature_map(self.to_q(x_t).view(b, h, d))
        k = elu_feature_map(self.to_k(x_t).view(b, h, d))
        v = self.to_v(x_t).view(b, h, d)
        if keep is not None:
            k = k * keep[:, None, None].to(k.dtype)
        s = s + k[..., :, None] * v[..., None, :]
        z = z + k
        num = torch.einsum("bhm,bhmd->bhd", q, s)
        den = (q * z).sum(-1, keepdim=True)
        y = self.to_out(merge_heads((num / (den + self.eps))[:, :, None, :])[:, 0])
        return y, (s, z)
