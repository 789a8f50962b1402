"""The self-attention bottleneck (Tang et al. 2020) against a direct numpy computation.

The evolution smoke run on CarRacing belongs with the agent and evolution code (not here).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hebbian.encoders import make_encoder

torch.set_num_threads(1)


def direct_top_patches(frame, flat, k=10):
    """Cut 7x7 patches at stride 4 by hand, project, softmax over keys, column sums, top k."""
    wq, bq = flat[:588].reshape(4, 147), flat[588:592]
    wk, bk = flat[592:1180].reshape(4, 147), flat[1180:1184]
    patches, centres = [], []
    for r in range(23):
        for c in range(23):
            patches.append(frame[:, 4 * r: 4 * r + 7, 4 * c: 4 * c + 7].reshape(-1))  # (channel, row, col)
            centres.append((4 * r + 3, 4 * c + 3))
    p = np.array(patches, dtype=np.float64)
    q, key = p @ wq.T + bq, p @ wk.T + bk
    s = q @ key.T / 2.0  # sqrt(4)
    a = np.exp(s - s.max(1, keepdims=True))
    a /= a.sum(1, keepdims=True)
    importance = a.sum(0)
    top = np.argsort(-importance, kind="stable")[:k]
    return top, np.array(centres, dtype=np.float64)[top].reshape(-1) / 95.0, importance


def test_sizes():
    enc = make_encoder("patch-attention")
    assert enc.obs_shape == (3, 96, 96)
    assert enc.num_patches == 529 and enc.num_features == 20
    assert enc.num_params == 2 * (147 * 4 + 4) == 1184


@pytest.mark.parametrize("seed", range(3))
def test_top_patches_match_direct_computation(seed):
    rng = np.random.default_rng(seed)
    frame = rng.random((3, 96, 96), dtype=np.float32)
    frame[:, 40:60, 10:30] = 1.0  # some structure besides noise
    enc = make_encoder("patch-attention")
    flat = (rng.standard_normal(1184) * 0.3).astype(np.float32)
    enc.set_params(flat)
    top, features, importance = direct_top_patches(frame.astype(np.float64), flat.astype(np.float64))
    with torch.inference_mode():
        got_importance = enc.importance(torch.from_numpy(frame)).numpy()
        got_top = enc.top_patches(torch.from_numpy(frame)).numpy()
    np.testing.assert_allclose(got_importance, importance, rtol=1e-4)
    np.testing.assert_array_equal(got_top, top)
    out = enc.encode(frame)
    assert out.dtype == np.float32 and out.shape == (20,) and ((out >= 0) & (out <= 1)).all()
    np.testing.assert_allclose(out, features, atol=1e-6)


def test_deterministic_and_reads_params_without_copy():
    frame = np.random.default_rng(7).random((3, 96, 96), dtype=np.float32)
    enc = make_encoder("patch-attention")
    flat = np.random.default_rng(8).standard_normal(1184).astype(np.float32)
    enc.set_params(flat)
    first = enc.encode(frame)
    assert np.array_equal(first, enc.encode(frame))
    assert enc.query.weight.data_ptr() == flat.ctypes.data  # a view into the caller's vector
    flat[:] = np.random.default_rng(9).standard_normal(1184)
    assert not np.array_equal(first, enc.encode(frame))


def test_ties_are_broken_by_patch_index():
    enc = make_encoder("patch-attention")
    enc.set_params(np.zeros(1184, np.float32))  # uniform attention: every patch equally important
    out = enc.encode(np.zeros((3, 96, 96), np.float32)).reshape(10, 2) * 95
    np.testing.assert_allclose(out, [[3, 3 + 4 * c] for c in range(10)], atol=1e-4)


def test_rejects_wrong_shapes():
    enc = make_encoder("patch-attention")
    with pytest.raises(ValueError, match="shape"):
        enc.encode(np.zeros((3, 84, 84), np.float32))
    with pytest.raises(ValueError, match="1184"):
        enc.set_params(np.zeros(10, np.float32))
