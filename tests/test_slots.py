"""Slot Attention against a step-by-step reference, its symmetries, and the slot encoder."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hebbian.encoders import make_encoder
from hebbian.encoders.slots import SlotAttention

torch.set_num_threads(1)


def layer_norm(x, mod):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + mod.eps) * mod.weight + mod.bias


def ref_slot_attention(sa: SlotAttention, inputs, slots):
    """Locatello et al. Algorithm 1 written out, GRU gates included, using `sa`'s weights."""
    x = layer_norm(inputs, sa.norm_inputs)
    k, v = x @ sa.to_k.weight.T, x @ sa.to_v.weight.T
    g = sa.gru
    for _ in range(sa.iters):
        prev = slots
        q = layer_norm(slots, sa.norm_slots) @ sa.to_q.weight.T
        attn = torch.softmax(k @ q.transpose(1, 2) / np.sqrt(sa.dim), dim=-1)  # over slots
        w = (attn + sa.eps) / (attn + sa.eps).sum(1, keepdim=True)           # over inputs
        u = w.transpose(1, 2) @ v
        gi = u @ g.weight_ih.T + g.bias_ih
        gh = prev @ g.weight_hh.T + g.bias_hh
        r = torch.sigmoid(gi[..., : sa.dim] + gh[..., : sa.dim])
        z = torch.sigmoid(gi[..., sa.dim: 2 * sa.dim] + gh[..., sa.dim: 2 * sa.dim])
        n = torch.tanh(gi[..., 2 * sa.dim:] + r * gh[..., 2 * sa.dim:])
        slots = (1 - z) * n + z * prev
        h = torch.relu(layer_norm(slots, sa.norm_mlp) @ sa.mlp[0].weight.T + sa.mlp[0].bias)
        slots = slots + h @ sa.mlp[2].weight.T + sa.mlp[2].bias
    return slots, attn


@pytest.mark.parametrize("seed", range(3))
def test_matches_reference(seed):
    rng = np.random.default_rng(seed)
    b, n, s, d, din = (int(x) for x in (rng.integers(1, 3), rng.integers(3, 20), rng.integers(1, 6),
                                         rng.integers(2, 9), rng.integers(2, 9)))
    torch.manual_seed(seed)
    sa = SlotAttention(s, d, iters=3, input_dim=din).double()
    inputs = torch.randn(b, n, din, dtype=torch.float64)
    init = torch.randn(b, s, d, dtype=torch.float64)
    got, attn = sa(inputs, init, return_attn=True)
    want, want_attn = ref_slot_attention(sa, inputs, init)
    np.testing.assert_allclose(got.detach(), want.detach(), atol=1e-12)
    np.testing.assert_allclose(attn.detach(), want_attn.detach(), atol=1e-12)


def test_invariant_to_input_order_and_equivariant_to_slot_order():
    torch.manual_seed(0)
    sa = SlotAttention(5, 8).double()
    inputs = torch.randn(2, 30, 8, dtype=torch.float64)
    init = torch.randn(2, 5, 8, dtype=torch.float64)
    base = sa(inputs, init)
    perm_in = torch.randperm(30)
    np.testing.assert_allclose(sa(inputs[:, perm_in], init).detach(), base.detach(), atol=1e-12)
    perm_slots = torch.randperm(5)
    np.testing.assert_allclose(sa(inputs, init[:, perm_slots]).detach(), base[:, perm_slots].detach(), atol=1e-12)


def test_attention_over_slots_sums_to_one():
    torch.manual_seed(1)
    sa = SlotAttention(4, 16)
    _, attn = sa(torch.randn(3, 25, 16), return_attn=True)
    assert attn.shape == (3, 25, 4) and (attn >= 0).all()
    np.testing.assert_allclose(attn.sum(-1).detach(), np.ones((3, 25)), atol=1e-6)


def test_initial_slots_are_reparameterised_draws():
    torch.manual_seed(2)
    sa = SlotAttention(3, 6, iters=1)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    drawn = sa.slots_mu + sa.slots_log_sigma.exp() * torch.randn(2, 3, 6, generator=g2)
    np.testing.assert_allclose(sa.sample_slots(2, g1).detach(), drawn.detach())
    sa(torch.randn(2, 7, 6)).sum().backward()  # gradient reaches mu and sigma through the draw
    assert sa.slots_mu.grad.abs().sum() > 0 and sa.slots_log_sigma.grad.abs().sum() > 0


def test_slot_encoder_is_deterministic_frozen_or_evolved():
    frame = np.random.default_rng(0).random((3, 96, 96), dtype=np.float32)
    enc = make_encoder("slots")
    assert (enc.obs_shape, enc.num_features, enc.num_params, enc.num_weights) == ((3, 96, 96), 128, 0, 69_888)
    f = enc.encode(frame)
    assert f.dtype == np.float32 and f.shape == (128,) and np.array_equal(f, enc.encode(frame))
    assert np.array_equal(f, make_encoder("slots").encode(frame))  # a pure function of the seed
    enc.set_params(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="frozen"):
        enc.set_params(np.zeros(10, np.float32))

    evolved = make_encoder("slots", evolve=True)
    assert evolved.num_params == 69_888
    flat = torch.nn.utils.parameters_to_vector(evolved.net.parameters()).numpy().copy()
    evolved.set_params(flat)
    np.testing.assert_allclose(evolved.encode(frame), f, atol=1e-6)
    flat *= 1.5  # the network reads the caller's buffer: no copy was made
    assert not np.allclose(evolved.encode(frame), f, atol=1e-3)


def test_slot_encoder_loads_weights(tmp_path):
    frame = np.random.default_rng(1).random((3, 96, 96), dtype=np.float32)
    a = make_encoder("slots", seed=3)
    torch.save(a.net.state_dict(), tmp_path / "w.pt")
    b = make_encoder("slots", seed=3, weights=str(tmp_path / "w.pt"))
    c = make_encoder("slots", seed=4)
    assert np.array_equal(a.encode(frame), b.encode(frame))
    assert not np.allclose(a.encode(frame), c.encode(frame))
