"""Reformer LSH attention and reversible residual blocks against references written here."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hebbian.encoders.attention import make_attention
from hebbian.encoders.attention.lsh import lsh_attention
from hebbian.encoders.attention.reversible import (FeedForward, PreNorm, ReversibleBlock,
                                                   ReversibleSequence, ReversibleTransformer)

torch.set_num_threads(1)


def ref_lsh(qk, v, keep, bucket_size, rotations=None, n_hashes=1, n_buckets=1, dedup=True):
    """Direct LSH attention, one query at a time (numpy float64).

    Per round: bucket each token (hidden ones in an extra last bucket), order by (bucket,
    position), cut into chunks; a query's window is its chunk and the previous one. Then a
    softmax over the union of windows (a multiset without `dedup`), with keys normalised,
    hidden keys excluded and the query itself used only when nothing else is visible.
    """
    b, n, d = qk.shape
    chunk = min(bucket_size, n)
    n_chunks = math.ceil(n / chunk)
    length = n_chunks * chunk
    pad = length - n
    qk = np.pad(qk, ((0, 0), (0, pad), (0, 0)))
    v = np.pad(v, ((0, 0), (0, pad), (0, 0)))
    keep = np.pad(np.ones((b, n), bool) if keep is None else keep, ((0, 0), (0, pad)))
    out = np.zeros((b, n, v.shape[-1]))
    for bi in range(b):
        windows = [[] for _ in range(length)]
        for r in range(n_hashes):
            if n_buckets == 1:
                buckets = np.zeros(length, int)
            else:
                rot = qk[bi] @ rotations[:, r]
                buckets = np.concatenate([rot, -rot], axis=1).argmax(1)
            buckets[~keep[bi]] = n_buckets
            order = np.lexsort((np.arange(length), buckets))
            chunk_of = np.empty(length, int)
            chunk_of[order] = np.arange(length) // chunk
            for i in range(length):
                for j in range(length):
                    same = chunk_of[j] == chunk_of[i]
                    prev = n_chunks > 1 and chunk_of[j] == (chunk_of[i] - 1) % n_chunks
                    if same or prev:
                        windows[i].append(j)
        for i in range(n):
            keys = sorted(set(windows[i])) if dedup else windows[i]
            others = [j for j in keys if keep[bi, j] and j != i]
            if not others:
                out[bi, i] = v[bi, i]
                continue
            k = qk[bi, others] / np.linalg.norm(qk[bi, others], axis=1, keepdims=True)
            s = k @ qk[bi, i] / math.sqrt(d)
            w = np.exp(s - s.max())
            out[bi, i] = (w / w.sum()) @ v[bi, others]
    return out


def case(seed, n_range=(3, 20)):
    rng = np.random.default_rng(seed)
    b, n, d = rng.integers(1, 3), rng.integers(*n_range), rng.integers(2, 6)
    qk, v = rng.standard_normal((b, n, d)), rng.standard_normal((b, n, 3))
    keep = rng.random((b, n)) < 0.75
    return rng, qk, v, keep


@pytest.mark.parametrize("seed", range(5))
def test_one_bucket_is_exact_attention_without_self(seed):
    """One bucket and one or two chunks: every round sees every key, so LSH = exact attention
    (with the self rule), however many rounds and with or without de-duplication."""
    _, qk, v, keep = case(seed)
    n = qk.shape[1]
    for bucket_size in (n, math.ceil(n / 2)):  # the second pads odd n
        for n_hashes, dedup in ((1, True), (4, True), (4, False)):
            for m in (None, keep):
                got = lsh_attention(torch.from_numpy(qk), torch.from_numpy(v), n_hashes, 1, bucket_size,
                                    None if m is None else torch.from_numpy(m), dedup=dedup).numpy()
                np.testing.assert_allclose(got, ref_lsh(qk, v, m, bucket_size), atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dedup", [True, False])
def test_multi_round_lsh_matches_direct_reference(seed, dedup):
    rng, qk, v, keep = case(seed, (10, 30))
    n_hashes, n_buckets = int(rng.integers(1, 4)), int(rng.choice([2, 4, 6]))
    bucket_size = int(rng.integers(2, 7))
    rotations = rng.standard_normal((qk.shape[2], n_hashes, n_buckets // 2))
    for m in (None, keep):
        got = lsh_attention(torch.from_numpy(qk), torch.from_numpy(v), n_hashes, n_buckets, bucket_size,
                            None if m is None else torch.from_numpy(m),
                            rotations=torch.from_numpy(rotations), dedup=dedup).numpy()
        want = ref_lsh(qk, v, m, bucket_size, rotations, n_hashes, n_buckets, dedup)
        np.testing.assert_allclose(got, want, atol=1e-10)


def top_key_recall(n_hashes, seeds, n=256, d=16, bucket_size=16):
    """Fraction of queries whose most similar other key gets weight in some round.

    With v = identity the output row of query i is its attention over all keys."""
    hits = []
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        qk = torch.randn(1, n, d, dtype=torch.float64, generator=g)
        weights = lsh_attention(qk, torch.eye(n, dtype=torch.float64)[None], n_hashes, None, bucket_size,
                                generator=g)[0]
        k = torch.nn.functional.normalize(qk[0], dim=-1)
        sim = (qk[0] @ k.T).fill_diagonal_(-math.inf)
        top = sim.argmax(dim=1)
        hits.append((weights[torch.arange(n), top] > 0).double().mean().item())
    return float(np.mean(hits))


def test_recall_of_true_top_key_rises_with_rounds():
    recall = [top_key_recall(r, range(3)) for r in (1, 2, 4, 8)]
    assert all(a < b for a, b in zip(recall, recall[1:])), recall
    assert recall[-1] > 0.9, recall


def test_module_hashes_fresh_unless_seeded_and_pads_any_length():
    torch.manual_seed(0)
    fresh = make_attention("lsh", 8, 2, bucket_size=4, n_hashes=1)
    seeded = make_attention("lsh", 8, 2, bucket_size=4, n_hashes=1, seed=3)
    x = torch.randn(1, 37, 8)  # 37 is not a multiple of the chunk
    assert not torch.allclose(fresh(x), fresh(x))
    assert torch.equal(seeded(x), seeded(x)) and seeded(x).shape == x.shape


# ---------------------------------------------------------------- reversible blocks

def make_blocks(depth, dim=8, seed=0, mechanism="lsh"):
    torch.manual_seed(seed)
    opts = {"bucket_size": 4, "n_hashes": 2, "dropout": 0.2} if mechanism == "lsh" else {}
    return [ReversibleBlock(PreNorm(dim, make_attention(mechanism, dim, 2, **opts)),
                            PreNorm(dim, FeedForward(dim, 2, dropout=0.2))).double()
            for _ in range(depth)]


def plain_residual(blocks, x, mask):
    """The reference: ordinary residual blocks, y1 = x1 + F(x2), y2 = x2 + G(y1), plain autograd."""
    x1, x2 = x.chunk(2, dim=-1)
    for blk in blocks:
        x1 = x1 + blk.f.net(x2, mask=mask)
        x2 = x2 + blk.g.net(x1)
    return torch.cat([x1, x2], dim=-1)


def run(fn, x, weight, seed):
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)  # dropout masks and LSH rotations come from here
    y = fn(x)
    (y * weight).sum().backward()
    return y.detach(), x.grad


def test_reversible_matches_ordinary_residual_outputs_and_gradients():
    blocks = make_blocks(3)
    rev = ReversibleSequence(blocks)
    x = torch.randn(2, 10, 16, dtype=torch.float64)
    weight = torch.randn(2, 10, 16, dtype=torch.float64)
    mask = torch.rand(2, 10) > 0.3

    y_ref, gx_ref = run(lambda x: plain_residual(blocks, x, mask), x, weight, seed=11)
    g_ref = [p.grad.clone() for p in rev.parameters()]
    rev.zero_grad()
    y_rev, gx_rev = run(lambda x: rev(x, mask=mask), x, weight, seed=11)
    g_rev = [p.grad.clone() for p in rev.parameters()]

    np.testing.assert_allclose(y_rev, y_ref, atol=1e-6)
    np.testing.assert_allclose(gx_rev, gx_ref, atol=1e-6)
    for a, b in zip(g_rev, g_ref):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # Not vacuous: another seed gives other dropout masks and rotations, hence other outputs.
    y_other, _ = run(lambda x: plain_residual(blocks, x, mask), x, weight, seed=12)
    assert (y_other - y_ref).abs().max() > 1e-3


def saved_bytes(module, x, **kwargs):
    """Bytes of non-parameter tensors saved for backward during one forward."""
    param_storages = {p.untyped_storage().data_ptr() for p in module.parameters()}
    total = 0

    def pack(t):
        nonlocal total
        if t.untyped_storage().data_ptr() not in param_storages:
            total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = module(x.clone().requires_grad_(), **kwargs)
    y.sum().backward()  # the saved tensors are also enough for a correct backward
    return total


def test_reversible_activation_memory_does_not_grow_with_depth():
    x = torch.randn(1, 32, 16, dtype=torch.float64)
    rev, plain = [], []
    for depth in (1, 2, 4, 8):
        blocks = make_blocks(depth, mechanism="softmax")
        rev.append(saved_bytes(ReversibleSequence(blocks, reversible=True), x))
        plain.append(saved_bytes(ReversibleSequence(blocks, reversible=False), x))
    assert len(set(rev)) == 1, rev
    assert rev[0] <= x.numel() * x.element_size()  # only the final output is kept
    per_block = plain[0]
    assert plain == [per_block * d for d in (1, 2, 4, 8)], plain
    assert per_block > 10 * rev[0]


def test_reversible_transformer_runs_every_mechanism():
    torch.manual_seed(0)
    x = torch.randn(2, 12, 8)
    for name, opts in [("softmax", {}), ("lsh", {"bucket_size": 4}), ("linformer", {"seq_len": 12, "k": 4}),
                       ("linear", {}), ("favor", {})]:
        net = ReversibleTransformer(8, 2, lambda: make_attention(name, 8, 2, **opts))
        xg = x.clone().requires_grad_()
        y = net(xg, mask=torch.ones(2, 12, dtype=torch.bool))
        y.sum().backward()
        assert y.shape == x.shape and torch.isfinite(xg.grad).all()
        with torch.inference_mode():  # no autograd: the plain path
            assert net(x).shape == x.shape


def test_reversible_fills_parameter_gradients_when_input_needs_none():
    blocks = make_blocks(2, mechanism="softmax")
    rev = ReversibleSequence(blocks)
    rev(torch.randn(1, 6, 16, dtype=torch.float64)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rev.parameters())
