"""`vit-<mechanism>` encoders: every mechanism as token mixer, determinism, weights, gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hebbian.encoders import make_encoder
from hebbian.encoders.attention import MECHANISMS
from hebbian.encoders.vit import ViT

torch.set_num_threads(1)

FRAME = np.random.default_rng(0).random((3, 96, 96), dtype=np.float32)


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_every_mechanism_encodes_deterministically(mechanism):
    enc = make_encoder(f"vit-{mechanism}")
    assert enc.obs_shape == (3, 96, 96) and enc.num_params == 0 and enc.num_features == 64
    f = enc.encode(FRAME)
    assert f.dtype == np.float32 and f.shape == (64,) and np.isfinite(f).all()
    assert np.array_equal(f, enc.encode(FRAME))  # LSH rotations replayed from the seed
    assert np.array_equal(f, make_encoder(f"vit-{mechanism}").encode(FRAME))


def test_options_reach_the_mechanism_and_reversible_blocks():
    enc = make_encoder("vit-lsh", image_size=32, patch_size=8, dim=16, heads=2, reversible=True,
                       n_hashes=2, bucket_size=4)
    attn = enc.net.blocks.layers.blocks[0].f.net.fn
    assert (attn.n_hashes, attn.bucket_size) == (2, 4)
    assert enc.encode(np.zeros((3, 32, 32), np.float32)).shape == (16,)
    with pytest.raises(ValueError, match="choose one of"):
        make_encoder("vit-nope")


def test_vit_trains_for_pretraining():
    torch.manual_seed(0)
    for mechanism in sorted(MECHANISMS):
        net = ViT(mechanism, image_size=32, patch_size=8, dim=16, heads=2, depth=1)
        net(torch.rand(2, 3, 32, 32)).square().sum().backward()
        assert all(p.grad is not None for p in net.parameters()), mechanism


def test_evolved_and_loaded_weights(tmp_path):
    small = dict(image_size=32, patch_size=8, dim=16, heads=2)
    frame = FRAME[:, :32, :32].copy()
    enc = make_encoder("vit-favor", seed=5, **small)
    torch.save(enc.net.state_dict(), tmp_path / "w.pt")
    loaded = make_encoder("vit-favor", seed=6, weights=str(tmp_path / "w.pt"), **small)
    assert np.array_equal(enc.encode(frame), loaded.encode(frame))  # random features are a buffer

    evolved = make_encoder("vit-linear", evolve=True, **small)
    assert evolved.num_params == evolved.num_weights > 0
    flat = np.random.default_rng(1).standard_normal(evolved.num_params).astype(np.float32) * 0.1
    evolved.set_params(flat)
    before = evolved.encode(frame)
    flat *= 2
    assert not np.allclose(before, evolved.encode(frame))
