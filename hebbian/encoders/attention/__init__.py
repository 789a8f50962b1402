"""Attention mechanisms behind one factory.

`make_attention(name, dim, heads, **options)` returns a `torch.nn.Module` whose
`forward(x, mask=None)` maps (batch, tokens, dim) -> (batch, tokens, dim); `mask` is an
optional bool key padding mask (batch, tokens), True = keep. Hidden keys never enter a
normaliser, so they cannot change the output of any visible query.

    name        module       options (defaults)
    softmax     softmax.py   causal=False, dropout=0.0                 exact, the reference
    lsh         lsh.py       n_hashes=4, bucket_size=64, n_buckets=None, dedup=True, dropout=0.0, seed=None
    linformer   linformer.py seq_len (required), k=64, share_kv=False
    linear      linear.py    causal=False                              (+ .step for acting)
    favor       favor.py     num_features=None, orthogonal=True, causal=False, seed=None
All accept `dim_head` (default dim // heads). `reversible.py` holds the reversible residual
blocks (`ReversibleTransformer`) the Reformer pairs with LSH attention.
"""
from __future__ import annotations

from torch import nn

from hebbian.encoders.attention.favor import FavorAttention
from hebbian.encoders.attention.linear import LinearAttention
from hebbian.encoders.attention.linformer import LinformerAttention
from hebbian.encoders.attention.lsh import LSHAttention
from hebbian.encoders.attention.softmax import SoftmaxAttention

MECHANISMS: dict[str, type[nn.Module]] = {
    "softmax": SoftmaxAttention,
    "lsh": LSHAttention,
    "linformer": LinformerAttention,
    "linear": LinearAttention,
    "favor": FavorAttention,
}


def make_attention(name: str, dim: int, heads: int, **options) -> nn.Module:
    """Build attention mechanism `name` for model width `dim` with `heads` heads.

    Raises ValueError for an unknown name (listing the known ones) and TypeError for an
    option the mechanism does not take (e.g. `causal` for lsh, a missing `seq_len` for linformer).
    """
    try:
        cls = MECHANISMS[name]
    except KeyError:
        raise ValueError(f"unknown attention {name!r}; choose one of: {', '.join(MECHANISMS)}") from None
    return cls(dim, heads, **options)


__all__ = ["MECHANISMS", "make_attention", "SoftmaxAttention", "LSHAttention", "LinformerAttention",
           "LinearAttention", "FavorAttention"]
