"""The self-attention bottleneck (Tang et al. 2020) against the authors' forward pass (torch,
transcribed here) and a direct float64 NumPy computation.

The evolution smoke run on CarRacing belongs with the agent and evolution code (not here).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from authors_torch import load_authors_layout
from hebbian.encoders import make_encoder

torch.set_num_threads(1)


def authors_forward(frame_chw, flat, image_size=96, patch_size=7, stride=4, top_k=10):
    """VisionTaskSolution._get_output up to the controller's input, as in the authors' code
    (AttentionAgent/solutions/torch_solutions.py), with their set_params layout."""
    fc_q, fc_k = torch.nn.Linear(147, 4), torch.nn.Linear(147, 4)
    load_authors_layout([fc_q, fc_k], flat)
    n = int((image_size - patch_size) / stride + 1)
    off = patch_size // 2
    centers = torch.tensor([[off + i * stride, off + j * stride] for i in range(n) for j in range(n)]).float()
    with torch.no_grad():
        ob = torch.from_numpy(frame_chw).permute(1, 2, 0)  # ob.shape = (h, w, c)
        h, w, c = ob.size()
        patches = ob.unfold(0, patch_size, stride).permute(0, 3, 1, 2)
        patches = patches.unfold(2, patch_size, stride).permute(0, 2, 1, 4, 3)
        patches = patches.reshape((-1, patch_size, patch_size, c))
        flattened = patches.reshape((1, -1, c * patch_size ** 2))
        b, t, k = flattened.size()
        dot = torch.bmm(fc_q(input=flattened), fc_k(input=flattened).transpose(1, 2))
        attention = torch.div(dot, torch.sqrt(torch.tensor(k).float()))
        importance = torch.softmax(attention.squeeze(), dim=-1).sum(dim=0)
        top = torch.argsort(importance, descending=True)[:top_k]
        features = centers[top].flatten(0, -1) / image_size
    return flattened[0].numpy(), importance.numpy(), top.numpy(), features.numpy()


def direct_top_patches(frame, flat, k=10):
    """Cut 7x7 patches at stride 4 by hand, project, softmax over keys, column sums, top k (float64)."""
    bq, wq = flat[:4], flat[4:592].reshape(4, 147)
    bk, wk = flat[592:596], flat[596:1184].reshape(4, 147)
    patches, centres = [], []
    for r in range(23):
        for c in range(23):
            patches.append(frame[:, 4 * r: 4 * r + 7, 4 * c: 4 * c + 7].transpose(1, 2, 0).reshape(-1))  # (row, col, channel)
            centres.append((4 * r + 3, 4 * c + 3))
    p = np.array(patches, dtype=np.float64)
    q, key = p @ wq.T + bq, p @ wk.T + bk
    s = q @ key.T / np.sqrt(147.0)
    a = np.exp(s - s.max(1, keepdims=True))
    a /= a.sum(1, keepdims=True)
    importance = a.sum(0)
    top = np.argsort(-importance, kind="stable")[:k]
    return top, np.array(centres, dtype=np.float64)[top].reshape(-1) / 96.0, importance


def test_sizes():
    enc = make_encoder("patch-attention")
    assert enc.obs_shape == (3, 96, 96)
    assert enc.num_patches == 529 and enc.num_features == 20
    assert enc.num_params == 2 * (4 + 147 * 4) == 1184


def test_param_layout_is_the_authors():
    enc = make_encoder("patch-attention")
    flat = np.arange(1184, dtype=np.float32)
    enc.set_params(flat)
    np.testing.assert_array_equal(enc.query_bias, flat[:4])
    np.testing.assert_array_equal(enc.query_weight, flat[4:592].reshape(4, 147))
    np.testing.assert_array_equal(enc.key_bias, flat[592:596])
    np.testing.assert_array_equal(enc.key_weight, flat[596:].reshape(4, 147))
    for view in (enc.query_bias, enc.query_weight, enc.key_bias, enc.key_weight):
        assert np.shares_memory(view, flat)


@pytest.mark.parametrize("seed", range(4))
def test_matches_the_authors_forward_pass(seed):
    rng = np.random.default_rng(seed)
    enc = make_encoder("patch-attention")
    frame = rng.random((3, 96, 96), dtype=np.float32)  # random floats: no ties in importance
    # Torch's init range, then larger weights (sharper attention; the last takes the kernel's
    # exact-max path on most rows).
    flat = (enc.initial_params(seed) * [1, 5, 20, 60][seed]).astype(np.float32)
    enc.set_params(flat)
    patches, importance, top, features = authors_forward(frame, flat)
    np.testing.assert_array_equal(enc.patches(frame), patches)
    np.testing.assert_allclose(enc.importance(frame), importance, rtol=1e-4, atol=1e-6)
    out = enc.encode(frame)
    assert out.dtype == np.float32 and out.shape == (20,) and ((out >= 0) & (out < 1)).all()
    np.testing.assert_array_equal(enc.top_patches(frame), top)
    np.testing.assert_allclose(out, features, atol=1e-7)


@pytest.mark.parametrize("seed", range(3))
def test_top_patches_match_direct_computation(seed):
    rng = np.random.default_rng(10 + seed)
    frame = rng.random((3, 96, 96), dtype=np.float32)
    frame[:, 40:60, 10:30] += 0.5  # some structure besides noise
    enc = make_encoder("patch-attention")
    flat = (rng.standard_normal(1184) * [0.03, 0.3, 3.0][seed]).astype(np.float32)
    enc.set_params(flat)
    top, features, importance = direct_top_patches(frame.astype(np.float64), flat.astype(np.float64))
    np.testing.assert_allclose(enc.importance(frame), importance, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(enc.top_patches(frame), top)
    np.testing.assert_allclose(enc.encode(frame), features, atol=1e-7)


def test_deterministic_and_reads_params_without_copy():
    frame = np.random.default_rng(7).random((3, 96, 96), dtype=np.float32)
    enc = make_encoder("patch-attention")
    flat = np.random.default_rng(8).standard_normal(1184).astype(np.float32)
    enc.set_params(flat)
    first = enc.encode(frame).copy()  # encode returns an internal buffer
    assert np.array_equal(first, enc.encode(frame))
    flat[:] = np.random.default_rng(9).standard_normal(1184)  # read at the next encode
    assert not np.array_equal(first, enc.encode(frame))


def test_ties_are_broken_by_patch_index():
    enc = make_encoder("patch-attention")
    enc.set_params(np.zeros(1184, np.float32))  # uniform attention: every patch equally important
    out = enc.encode(np.zeros((3, 96, 96), np.float32)).reshape(10, 2) * 96
    np.testing.assert_allclose(out, [[3, 3 + 4 * c] for c in range(10)], atol=1e-4)


def test_non_finite_params_give_finite_features():
    enc = make_encoder("patch-attention")
    flat = enc.initial_params(0)
    flat[10] = np.nan
    enc.set_params(flat)
    out = enc.encode(np.random.default_rng(0).random((3, 96, 96), dtype=np.float32))
    assert np.isfinite(out).all() and ((out >= 0) & (out < 1)).all()


def test_initial_params_follow_torch_defaults():
    enc = make_encoder("patch-attention")
    p = enc.initial_params(3)
    bound = 1 / np.sqrt(147)
    assert p.dtype == np.float32 and p.shape == (1184,)
    assert np.abs(p).max() <= bound and p.var() == pytest.approx(bound**2 / 3, rel=0.15)
    np.testing.assert_array_equal(p, enc.initial_params(3))


def test_rejects_wrong_shapes():
    enc = make_encoder("patch-attention")
    with pytest.raises(ValueError, match="shape"):
        enc.encode(np.zeros((3, 84, 84), np.float32))
    with pytest.raises(ValueError, match="1184"):
        enc.set_params(np.zeros(10, np.float32))


@pytest.mark.parametrize("options", [{"dim": 6, "top_k": 5}, {"image_size": 64, "patch_size": 5, "stride": 3, "dim": 3}])
def test_other_options_match_a_direct_computation(options):
    enc = make_encoder("patch-attention", **options)
    ps, st, d, g = enc.patch_size, enc.stride, enc.dim, enc.grid
    rng = np.random.default_rng(5)
    frame = rng.random(enc.obs_shape, dtype=np.float32)
    flat = (enc.initial_params(1) * 10).astype(np.float32)
    enc.set_params(flat)
    f = flat.astype(np.float64)
    half = d + d * enc.patch_dim
    wq, bq = f[d:half].reshape(d, -1), f[:d]
    wk, bk = f[half + d:].reshape(d, -1), f[half: half + d]
    x = np.array([frame[:, st * r: st * r + ps, st * c: st * c + ps].transpose(1, 2, 0).reshape(-1)
                  for r in range(g) for c in range(g)], dtype=np.float64)
    s = (x @ wq.T + bq) @ (x @ wk.T + bk).T / np.sqrt(enc.patch_dim)
    a = np.exp(s - s.max(1, keepdims=True))
    importance = (a / a.sum(1, keepdims=True)).sum(0)
    top = np.argsort(-importance, kind="stable")[: enc.top_k]
    centres = np.array([(st * (p // g) + ps // 2, st * (p % g) + ps // 2) for p in top]) / enc.image_size
    np.testing.assert_allclose(enc.importance(frame), importance, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(enc.top_patches(frame), top)
    np.testing.assert_allclose(enc.encode(frame), centres.reshape(-1), atol=1e-7)
