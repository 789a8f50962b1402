"""SupCon / NT-Xent against references written here, BYOL's schedule and collapse, augmentations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from hebbian.encoders.augment import FrameAugment, color_jitter, random_grayscale, random_resized_crop, random_shift
from hebbian.encoders.contrastive import BYOL, byol_loss, byol_tau, normalized_spread, nt_xent_loss, supcon_loss

torch.set_num_threads(1)


# -- references ----------------------------------------------------------------------------------
def supcon_reference(features, labels, temperature):
    """Khosla et al. eq. 2 (L_out), one anchor and one positive at a time, in float64 Python loops."""
    batch, views, _ = features.shape
    z = [features[i, v].double() / features[i, v].double().norm() for i in range(batch) for v in range(views)]
    lab = [int(labels[i]) for i in range(batch) for _ in range(views)]
    per_anchor = []
    for a in range(len(z)):
        positives = [p for p in range(len(z)) if p != a and lab[p] == lab[a]]
        if not positives:
            continue
        denom = sum(math.exp(float(z[a] @ z[k]) / temperature) for k in range(len(z)) if k != a)
        per_anchor.append(-sum(float(z[a] @ z[p]) / temperature - math.log(denom) for p in positives) / len(positives))
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0  # no anchor with a positive: 0


def nt_xent_reference(z1, z2, temperature):
    """SimCLR's NT-Xent as in its paper: 2N anchors, cross-entropy over the 2N - 1 others, target = the other view."""
    z = nn.functional.normalize(torch.cat([z1, z2]).double(), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return float(nn.functional.cross_entropy(sim, targets))


# -- SupCon --------------------------------------------------------------------------------------
@pytest.mark.parametrize("views", [1, 2, 3])
@pytest.mark.parametrize("pattern", ["distinct", "pairs", "one_class", "mixed"])
def test_supcon_matches_double_loop(views, pattern):
    g = torch.Generator().manual_seed(views)
    batch = 6
    labels = {"distinct": [0, 1, 2, 3, 4, 5], "pairs": [0, 0, 1, 1, 2, 2], "one_class": [7] * 6,
              "mixed": [0, 1, 1, 2, 2, 2]}[pattern]
    features = torch.randn(batch, views, 5, generator=g, dtype=torch.float64) * 3  # scale must not matter
    for temperature in (0.1, 0.5):
        got = float(supcon_loss(features, torch.tensor(labels), temperature))
        assert got == pytest.approx(supcon_reference(features, labels, temperature), rel=1e-9, abs=1e-12)


def test_supcon_without_labels_is_nt_xent():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 16, generator=g, dtype=torch.float64), torch.randn(8, 16, generator=g, dtype=torch.float64)
    expected = nt_xent_reference(z1, z2, 0.2)
    stacked = torch.stack([z1, z2], dim=1)
    assert float(supcon_loss(stacked, None, 0.2)) == pytest.approx(expected, rel=1e-12)
    assert float(supcon_loss(stacked, torch.arange(10, 18), 0.2)) == pytest.approx(expected, rel=1e-12)
    assert float(nt_xent_loss(z1, z2, 0.2)) == pytest.approx(expected, rel=1e-12)


def test_supcon_lower_for_label_aligned_features():
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(4).repeat_interleave(8)  # 4 classes x 8 samples
    centres = torch.randn(4, 32, generator=g)
    aligned = centres[labels][:, None, :] + 0.1 * torch.randn(32, 2, 32, generator=g)
    random = torch.randn(32, 2, 32, generator=g)
    assert float(supcon_loss(aligned, labels)) < float(supcon_loss(random, labels)) - 1.0


def test_supcon_no_positive_is_finite():
    features = torch.randn(5, 1, 8, dtype=torch.float64, requires_grad=True)
    # Anchors with labels 1 and 2 have no positive: left out, no NaN, gradients finite.
    labels = torch.tensor([0, 0, 1, 2, 0])
    loss = supcon_loss(features, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(features.grad).all()
    assert float(loss.detach()) == pytest.approx(supcon_reference(features.detach(), labels.tolist(), 0.1), rel=1e-9)
    # No anchor with a positive at all: 0, still differentiable.
    lonely = torch.randn(4, 1, 8, requires_grad=True)
    loss = supcon_loss(lonely, torch.arange(4))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.isfinite(lonely.grad).all()


def test_supcon_stable_for_tiny_temperature_and_identical_features():
    features = torch.ones(4, 2, 3) * 1e3
    loss = supcon_loss(features, torch.tensor([0, 1, 0, 1]), temperature=1e-3)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="batch, views, dim"):
        supcon_loss(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="one entry per sample"):
        supcon_loss(torch.zeros(4, 2, 3), torch.tensor([0, 1]))


# -- BYOL ----------------------------------------------------------------------------------------
def test_byol_tau_schedule():
    assert byol_tau(0, 100) == pytest.approx(0.996)
    assert byol_tau(50, 100) == pytest.approx(0.998)
    assert byol_tau(100, 100) == pytest.approx(1.0)
    assert byol_tau(500, 100) == pytest.approx(1.0)
    values = [byol_tau(k, 100) for k in range(101)]
    assert all(a <= b for a, b in zip(values, values[1:]))


def test_byol_target_follows_the_schedule():
    torch.manual_seed(0)
    model = BYOL(nn.Linear(4, 3), 3, projection_dim=2, hidden_dim=8, total_steps=10)
    optimizer = torch.optim.SGD(model.online_params(), lr=0.5)
    x = torch.randn(16, 4)
    # The target starts as a copy of the online network and is not trained by the loss.
    assert torch.equal(model.target_encoder.weight, model.encoder.weight)
    assert all(not p.requires_grad for p in model.target_encoder.parameters())
    for step in range(10):
        target_before = model.target_encoder.weight.clone()
        loss = model(x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tau = model.update_target(step)
        assert tau == pytest.approx(1 - 0.004 * (math.cos(math.pi * step / 10) + 1) / 2)
        expected = tau * target_before + (1 - tau) * model.encoder.weight.detach()
        torch.testing.assert_close(model.target_encoder.weight, expected)
    assert not torch.equal(model.target_encoder.weight, model.encoder.weight)
    # 2 - 2 cos: 0 for aligned vectors, 4 for opposite ones.
    q = torch.randn(5, 3)
    assert float(byol_loss(q, 2 * q)) == pytest.approx(0.0, abs=1e-6)
    assert float(byol_loss(q, -q)) == pytest.approx(4.0)


def _train_byol(predictor: bool, tau_base: float, schedule: str, steps: int = 300) -> float:
    """BYOL on 8 Gaussian clusters in R^32 (views: added noise); spread of normalised projections."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(8, 32, generator=g) * 2
    data = centres[torch.randint(0, 8, (512,), generator=g)] + 0.5 * torch.randn(512, 32, generator=g)
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 32))
    model = BYOL(encoder, 32, projection_dim=16, hidden_dim=64, predictor=predictor, tau_base=tau_base,
                 tau_schedule=schedule, total_steps=steps)
    optimizer = torch.optim.Adam(model.online_params(), lr=3e-3)
    for step in range(steps):
        x = data[torch.randint(0, 512, (64,), generator=g)]
        loss = model(x + 0.3 * torch.randn(x.shape, generator=g), x + 0.3 * torch.randn(x.shape, generator=g))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.update_target(step)
    model.eval()
    with torch.no_grad():
        return normalized_spread(model.projector(encoder(data)))


def test_byol_does_not_collapse_but_the_ablation_does():
    full = _train_byol(predictor=True, tau_base=0.996, schedule="cosine")
    ablated = _train_byol(predictor=False, tau_base=0.0, schedule="constant")
    uniform = 1 / math.sqrt(16)  # spread of points spread evenly over the 16-d sphere
    assert full > 0.7 * uniform, full
    assert ablated < 0.5 * full, (full, ablated)


def test_normalized_spread_limits():
    assert normalized_spread(torch.ones(10, 4)) == pytest.approx(0.0, abs=1e-7)
    spread = normalized_spread(torch.randn(4000, 16, generator=torch.Generator().manual_seed(0)))
    assert spread == pytest.approx(0.25, rel=0.05)


# -- augmentations -------------------------------------------------------------------------------
def _frames(batch=6, size=24):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(3))


def test_augment_is_seeded_per_sample_and_in_range():
    frames = _frames()
    augment = FrameAugment()
    a = augment(frames, torch.Generator().manual_seed(7))
    b = augment(frames, torch.Generator().manual_seed(7))
    c = augment(frames, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == frames.shape and a.min() >= 0 and a.max() <= 1
    # Same input frame in every row: each sample still gets its own draw.
    same = augment(frames[:1].expand(6, -1, -1, -1), torch.Generator().manual_seed(7))
    assert len({tuple(row.flatten()[:50].tolist()) for row in same}) == 6


def test_random_shift_moves_content_by_integer_offsets():
    frames = _frames(batch=4, size=16)
    g = torch.Generator().manual_seed(0)
    shifted = random_shift(frames, 3, g)
    offsets = torch.randint(0, 7, (4, 2), generator=torch.Generator().manual_seed(0))
    padded = nn.functional.pad(frames, (3, 3, 3, 3), mode="replicate")
    for i, (y, x) in enumerate(offsets.tolist()):
        assert torch.equal(shifted[i], padded[i, :, y:y + 16, x:x + 16])
    assert torch.equal(random_shift(frames, 0, g), frames)


def test_identity_settings_leave_frames_unchanged():
    frames = _frames()
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(random_resized_crop(frames, (1.0, 1.0), g), frames)
    assert torch.allclose(color_jitter(frames, 0, 0, 0, 0, g), frames)
    assert torch.equal(random_grayscale(frames, 0.0, g), frames)
    off = FrameAugment(crop_scale=(1.0, 1.0), shift=0, brightness=0, contrast=0, saturation=0, hue=0, grayscale_p=0)
    assert torch.allclose(off(frames, g), frames)
    # A zero hue rotation with other jitter off is the identity up to the YIQ round trip.
    assert torch.allclose(color_jitter(frames, 0, 0, 0, 1e-9, g), frames, atol=1e-5)


def test_grayscale_makes_channels_equal():
    grey = random_grayscale(_frames(), 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])


def test_crop_keeps_a_constant_frame_constant():
    frames = torch.full((3, 3, 20, 20), 0.25)
    out = random_resized_crop(frames, (0.5, 0.9), torch.Generator().manual_seed(0))
    assert torch.allclose(out, frames)
    with pytest.raises(ValueError, match="crop scale"):
        random_resized_crop(frames, (0.0, 1.0), torch.Generator())


def test_augment_rejects_bad_shapes():
    with pytest.raises(ValueError, match="batch, C, H, W"):
        FrameAugment()(torch.rand(3, 8, 8), torch.Generator())
    with pytest.raises(ValueError, match="RGB"):
        FrameAugment()(torch.rand(2, 1, 8, 8), torch.Generator())
    assert np.isclose(FrameAugment.from_dict(FrameAugment().to_dict()).crop_scale[0], 0.8)
