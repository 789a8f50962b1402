"""Attention mechanisms against exact references written here (numpy, float64)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from hebbian.encoders.attention import MECHANISMS, make_attention
from hebbian.encoders.attention.favor import (favor_attention, iid_gaussian_features,
                                              orthogonal_gaussian_features, softmax_kernel_features)
from hebbian.encoders.attention.linear import kernel_attention
from hebbian.encoders.attention.linformer import linformer_attention
from hebbian.encoders.attention.softmax import softmax_attention

torch.set_num_threads(1)


# ---------------------------------------------------------------- references (numpy float64)

def ref_softmax(q, k, v, keep=None, causal=False):
    """Loop over batch, head and query: softmax over the visible keys only."""
    b, h, n, d = q.shape
    out = np.zeros(q.shape[:3] + (v.shape[-1],))
    for bi in range(b):
        for hi in range(h):
            for i in range(n):
                js = [j for j in range(k.shape[2])
                      if (keep is None or keep[bi, j]) and (not causal or j <= i)]
                if not js:
                    continue
                s = np.array([q[bi, hi, i] @ k[bi, hi, j] for j in js]) / math.sqrt(d)
                w = np.exp(s - s.max())
                out[bi, hi, i] = (w / w.sum()) @ v[bi, hi, js]
    return out


def ref_kernel(phi_q, phi_k, v, keep=None, causal=False, eps=1e-6):
    """out_i = sum_j phi_q_i.phi_k_j v_j / (sum_j phi_q_i.phi_k_j + eps) over visible (j <= i)."""
    b, h, n, _ = phi_q.shape
    out = np.zeros(v.shape)
    for bi in range(b):
        for hi in range(h):
            for i in range(n):
                num, den = 0.0, 0.0
                for j in range(n):
                    if (keep is not None and not keep[bi, j]) or (causal and j > i):
                        continue
                    a = phi_q[bi, hi, i] @ phi_k[bi, hi, j]
                    num = num + a * v[bi, hi, j]
                    den += a
                out[bi, hi, i] = num / (den + eps)
    return out


def random_case(seed, max_n=12):
    """Random (b, h, n, d) tensors in float64 and a key mask with at least one key kept."""
    rng = np.random.default_rng(seed)
    b, h, n, d = rng.integers(1, 3), rng.integers(1, 3), rng.integers(2, max_n), rng.integers(2, 6)
    q, k, v = (rng.standard_normal((b, h, n, d)) for _ in range(3))
    keep = rng.random((b, n)) < 0.7
    keep[:, 0] = True
    return q, k, v, keep


def t(a):
    return torch.from_numpy(np.asarray(a))


# ---------------------------------------------------------------- softmax

@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("causal", [False, True])
def test_softmax_matches_reference(seed, causal):
    q, k, v, keep = random_case(seed)
    for m in (None, keep):
        got = softmax_attention(t(q), t(k), t(v), None if m is None else t(m), causal).numpy()
        np.testing.assert_allclose(got, ref_softmax(q, k, v, m, causal), atol=1e-12)


def test_softmax_module_is_projection_around_kernel():
    torch.manual_seed(0)
    att = make_attention("softmax", 12, 3).double()
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    split = lambda y: y.detach().view(2, 7, 3, 4).transpose(1, 2).numpy()
    q, k, v = split(att.to_q(x)), split(att.to_k(x)), split(att.to_v(x))
    heads = ref_softmax(q, k, v).transpose(0, 2, 1, 3).reshape(2, 7, 12)
    want = att.to_out(t(heads)).detach().numpy()
    np.testing.assert_allclose(att(x).detach().numpy(), want, atol=1e-12)


# ---------------------------------------------------------------- linformer

@pytest.mark.parametrize("seed", range(4))
def test_linformer_identity_projection_is_exact(seed):
    q, k, v, keep = random_case(seed)
    n = q.shape[2]
    eye = torch.eye(n, dtype=torch.float64)
    for m in (None, keep):
        got = linformer_attention(t(q), t(k), t(v), eye, eye, None if m is None else t(m)).numpy()
        np.testing.assert_allclose(got, ref_softmax(q, k, v, m), atol=1e-12)


def test_linformer_module_with_k_equal_n_and_identity_is_exact():
    torch.manual_seed(1)
    n, dim = 9, 8
    att = make_attention("linformer", dim, 2, seq_len=n, k=n).double()
    with torch.no_grad():
        att.proj_k.copy_(torch.eye(n))
        att.proj_v.copy_(torch.eye(n))
    exact = make_attention("softmax", dim, 2).double()
    exact.load_state_dict({k: v for k, v in att.state_dict().items() if not k.startswith("proj")})
    x = torch.randn(3, n, dim, dtype=torch.float64)
    np.testing.assert_allclose(att(x).detach(), exact(x).detach(), atol=1e-12)


def test_linformer_shorter_input_uses_first_rows():
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((1, 2, 6, 3)) for _ in range(3))
    e, f = rng.standard_normal((10, 4)), rng.standard_normal((10, 4))  # seq_len 10 > n 6
    kp = np.einsum("bhnd,nk->bhkd", k, e[:6])
    vp = np.einsum("bhnd,nk->bhkd", v, f[:6])
    got = linformer_attention(t(q), t(k), t(v), t(e), t(f)).numpy()
    np.testing.assert_allclose(got, ref_softmax(q, kp, vp), atol=1e-12)
    with pytest.raises(ValueError, match="seq_len"):
        linformer_attention(t(q), t(k), t(v), t(e[:4]), t(f[:4]))


def test_linformer_shared_projection():
    att = make_attention("linformer", 8, 2, seq_len=16, k=4, share_kv=True)
    assert att.proj_v is None and att(torch.randn(1, 16, 8)).shape == (1, 16, 8)


# ---------------------------------------------------------------- linear

@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("causal", [False, True])
def test_linear_kernel_matches_reference(seed, causal):
    q, k, v, keep = random_case(seed)
    elu1 = lambda x: np.where(x > 0, x + 1, np.exp(x))
    for m in (None, keep):
        got = kernel_attention(torch.nn.functional.elu(t(q)) + 1, torch.nn.functional.elu(t(k)) + 1, t(v),
                               None if m is None else t(m), causal).numpy()
        np.testing.assert_allclose(got, ref_kernel(elu1(q), elu1(k), v, m, causal), atol=1e-12)


def test_linear_causal_parallel_equals_recurrent_steps():
    torch.manual_seed(2)
    att = make_attention("linear", 16, 4, causal=True)
    x = torch.randn(3, 20, 16)
    keep = torch.rand(3, 20) > 0.3
    with torch.inference_mode():
        parallel = att(x, mask=keep)
        state = None
        for i in range(20):
            y, state = att.step(x[:, i], state, keep=keep[:, i])
            np.testing.assert_allclose(y, parallel[:, i], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- FAVOR+

@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("causal", [False, True])
def test_favor_is_kernel_attention_with_positive_random_features(seed, causal):
    """Stabilisation must cancel exactly: compare with the unstabilised formula."""
    q, k, v, keep = random_case(seed)
    d = q.shape[-1]
    w = np.random.default_rng(seed).standard_normal((7, d))
    phi = lambda x: np.exp(x * d ** -0.25 @ w.T - 0.5 * ((x * d ** -0.25) ** 2).sum(-1, keepdims=True))
    for m in (None, keep):
        got = favor_attention(t(q), t(k), t(v), t(w), None if m is None else t(m), causal, eps=0.0).numpy()
        np.testing.assert_allclose(got, ref_kernel(phi(q), phi(k), v, m, causal, eps=0.0), rtol=1e-9, atol=1e-12)


def kernel_mse(draw, num_features, seeds, d=16):
    """Mean squared error of phi(q).phi(k) against exp(q.k), float64, averaged over draws."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((64, d)) * 0.5 / d ** 0.25)
    y = torch.from_numpy(rng.standard_normal((64, d)) * 0.5 / d ** 0.25)
    exact = torch.exp(x @ y.T)
    errs = []
    for s in seeds:
        w = draw(num_features, d, torch.Generator().manual_seed(s), dtype=torch.float64)
        est = softmax_kernel_features(x, w) @ softmax_kernel_features(y, w).T
        errs.append(((est - exact) ** 2).mean().item())
    return float(np.mean(errs))


def test_favor_kernel_error_falls_with_more_features():
    errs = [kernel_mse(orthogonal_gaussian_features, m, range(10)) for m in (8, 32, 128, 512)]
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < errs[0] / 20  # error ~ 1/m: 64x more features, well over 20x less error


def test_orthogonal_features_beat_independent_on_average():
    # d = 16: one and two orthogonal blocks (the gain shrinks as m grows past a few blocks).
    for m in (16, 32):
        ortho = kernel_mse(orthogonal_gaussian_features, m, range(40))
        iid = kernel_mse(iid_gaussian_features, m, range(40))
        assert ortho < iid, (m, ortho, iid)


def test_orthogonal_blocks_are_orthogonal():
    w = orthogonal_gaussian_features(20, 8, torch.Generator().manual_seed(0), dtype=torch.float64)
    for block in (w[:8], w[8:16], w[16:]):
        u = block / block.norm(dim=1, keepdim=True)
        np.testing.assert_allclose(u @ u.T, np.eye(len(block)), atol=1e-12)


def test_favor_approaches_exact_attention_and_redraws():
    torch.manual_seed(3)
    att = make_attention("favor", 16, 2, num_features=2048, seed=0).double()
    exact = make_attention("softmax", 16, 2).double()
    exact.load_state_dict({k: v for k, v in att.state_dict().items() if k != "features"})
    x = torch.randn(2, 10, 16, dtype=torch.float64) * 0.5
    err = (att(x) - exact(x)).abs().max().item()
    assert err < 0.05, err
    before = att.features.clone()
    att.redraw_features()
    assert att.features.shape == before.shape and not torch.equal(att.features, before)
    assert make_attention("favor", 16, 2).num_features == round(8 * math.log(8))


def test_favor_large_logits_stay_finite():
    """Unstabilised exp would overflow here; the shifted features must not."""
    torch.manual_seed(4)
    q, k, v = torch.randn(3, 1, 2, 5, 8).unbind(0)
    w = orthogonal_gaussian_features(16, 8)
    out = favor_attention(q * 60, k * 60, v, w)
    assert torch.isfinite(out).all()


# ---------------------------------------------------------------- every mechanism

CONFIGS = [
    ("softmax", {}), ("softmax", {"causal": True}),
    ("lsh", {"bucket_size": 4, "n_hashes": 3, "seed": 7}),
    ("linformer", {"seq_len": 16, "k": 5}),
    ("linear", {}), ("linear", {"causal": True}),
    ("favor", {"seed": 1}), ("favor", {"causal": True, "seed": 1}),
]


@pytest.mark.parametrize("name,options", CONFIGS)
def test_hidden_keys_do_not_change_visible_queries(name, options):
    torch.manual_seed(5)
    att = make_attention(name, 12, 2, **options).double()
    x = torch.randn(3, 13, 12, dtype=torch.float64)
    keep = torch.rand(3, 13) > 0.4
    keep[:, 0] = True
    other = torch.where(keep[..., None], x, 50 * torch.randn_like(x))  # wild hidden tokens
    a, b = att(x, mask=keep), att(other, mask=keep)
    assert torch.isfinite(a).all()
    np.testing.assert_allclose(a[keep].detach(), b[keep].detach(), atol=1e-10)


@pytest.mark.parametrize("name,options", CONFIGS)
def test_shapes_and_gradients(name, options):
    att = make_attention(name, 8, 2, **options)
    x = torch.randn(2, 11, 8, requires_grad=True)
    y = att(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_factory_rejects_unknown_names_and_options():
    assert set(MECHANISMS) == {"softmax", "lsh", "linformer", "linear", "favor"}
    with pytest.raises(ValueError, match="choose one of"):
        make_attention("nope", 8, 2)
    with pytest.raises(TypeError):
        make_attention("lsh", 8, 2, causal=True)
    with pytest.raises(TypeError):
        make_attention("linformer", 8, 2)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_mask_invariance_on_random_shapes(data):
    """Same property on random sizes, heads and masks, every mechanism in one draw."""
    name, options = data.draw(st.sampled_from(CONFIGS))
    b, n = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 16))
    heads, dim_head = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 5))
    keep = torch.tensor(data.draw(st.lists(st.lists(st.booleans(), min_size=n, max_size=n),
                                           min_size=b, max_size=b)))
    seed = data.draw(st.integers(0, 2**16))
    torch.manual_seed(seed)
    att = make_attention(name, heads * dim_head, heads, **options).double()
    x = torch.randn(b, n, heads * dim_head, dtype=torch.float64)
    other = torch.where(keep[..., None], x, 30 * torch.randn_like(x))
    a, c = att(x, mask=keep), att(other, mask=keep)
    assert torch.isfinite(a).all() and a.shape == x.shape
    np.testing.assert_allclose(a[keep].detach(), c[keep].detach(), atol=1e-10)
