"""Contrastive and self-distillation objectives for pretraining encoders of frames.

* `supcon_loss`: Supervised Contrastive loss (Khosla et al. 2020, "Supervised Contrastive
  Learning", the L_out form, their eq. 2). Views of samples with the same label are
  positives; without labels every sample is its own class and the loss is SimCLR's NT-Xent
  (Chen et al. 2020).
* `BYOL`: Bootstrap Your Own Latent (Grill et al. 2020): an online network (encoder,
  projector, predictor) regresses a slowly moving target network (encoder, projector as an
  exponential moving average of the online ones), loss 2 - 2 cos(q, stop_grad(z')),
  symmetrised over the two views; the EMA rate follows the paper's cosine schedule
  `byol_tau`.

Only the encoder is kept after pretraining: projectors and predictors are the "last layers"
that the objectives need and the downstream task does not (SimCLR's finding: features before
the projector transfer better).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn


def supcon_loss(features: torch.Tensor, labels: torch.Tensor | None = None, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss, L_out form, averaged over anchors.

    Args:
        features: (batch, views, dim) embeddings; L2-normalised here, so any scale works.
        labels: (batch,) integer class of each sample, shared by its views; None makes every
            sample its own class (SimCLR's NT-Xent with `views` views per sample).
        temperature: tau; logits are cosine similarities / tau.
    Returns:
        scalar loss: the mean over anchors a of
            -1/|P(a)| sum_{p in P(a)} log( exp(z_a.z_p / tau) / sum_{k != a} exp(z_a.z_k / tau) )
        where a runs over all batch*views embeddings and P(a) are the other embeddings with a's
        label. Anchors without any positive (a label seen once, with one view) have nothing to
        pull towards and are left out of the mean; if no anchor has a positive the loss is 0
        (still attached to the graph, so backward works).

    Numerically stable: the softmax is a log_softmax (max-subtracted) and the anchor itself is
    masked with -inf before it, never multiplied in afterwards.
    """
    if features.ndim != 3:
        raise ValueError(f"features must have shape (batch, views, dim), got {tuple(features.shape)}")
    batch, views, _ = features.shape
    if batch * views < 2:
        raise ValueError("supcon_loss needs at least two embeddings (batch * views >= 2)")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if labels is None:
        labels = torch.arange(batch, device=features.device)
    labels = torch.as_tensor(labels, device=features.device).reshape(-1)
    if labels.shape[0] != batch:
        raise ValueError(f"labels must have one entry per sample ({batch}), got {labels.shape[0]}")
    # Sample-major order: row i*views + v is view v of sample i.
    z = F.normalize(features.reshape(batch * views, -1), dim=1)
    flat_labels = labels.repeat_interleave(views)
    n = z.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = (z @ z.T) / temperature
    log_prob = torch.log_softmax(logits.masked_fill(self_mask, float("-inf")), dim=1)
    positives = (flat_labels[:, None] == flat_labels[None, :]) & ~self_mask
    num_positives = positives.sum(dim=1)
    # where(), not multiplication: log_prob is -inf on the diagonal and 0 * -inf = NaN.
    summed = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    has_positive = num_positives > 0
    if not has_positive.any():
        return z.sum() * 0.0
    mean_log_prob = summed[has_positive] / num_positives[has_positive]
    return -mean_log_prob.mean()


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SimCLR's NT-Xent for two views (batch, dim) each: `supcon_loss` with no labels."""
    return supcon_loss(torch.stack([z1, z2], dim=1), None, temperature)


def mlp_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """Linear -> BatchNorm -> ReLU -> Linear: SimCLR's and BYOL's projector / predictor. (B, in) -> (B, out)."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, out_dim))


def byol_tau(step: int, total_steps: int, tau_base: float = 0.996) -> float:
    """BYOL's EMA rate at training step `step` of `total_steps`: 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2.

    Starts at tau_base (step 0) and rises to 1 at step K; steps beyond K stay at 1.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be a positive whole number, got {total_steps}")
    k = min(max(step, 0), total_steps)
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * k / total_steps) + 1.0) / 2.0


def byol_loss(q: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(q, z), averaged over the batch; (B, D) each. `z` is detached (the target's side)."""
    return (2.0 - 2.0 * F.cosine_similarity(q, z.detach(), dim=-1)).mean()


class BYOL(nn.Module):
    """Online (encoder -> projector -> predictor) and target (encoder -> projector, EMA) networks.

    Args:
        encoder: module mapping frames (B, C, H, W) to features (B, feature_dim); trained in place.
        feature_dim: its output width.
        projection_dim, hidden_dim: widths of the projector and predictor MLPs (`mlp_head`).
        predictor: False replaces the predictor by the identity (the ablation that collapses).
        tau_base: EMA rate at the start.
        tau_schedule: "cosine" (`byol_tau`, rising to 1 at `total_steps`) or "constant"
            (tau_base throughout; tau_base = 0 copies the online network every step).
        total_steps: length K of the cosine schedule.

    Use: `loss = byol(view1, view2)`; `loss.backward()`; `optimizer.step()`;
    `byol.update_target(step)` (after the optimizer step, with the 0-based step just taken).
    """

    def __init__(self, encoder: nn.Module, feature_dim: int, projection_dim: int = 128, hidden_dim: int = 512,
                 predictor: bool = True, tau_base: float = 0.996, tau_schedule: str = "cosine",
                 total_steps: int = 1000):
        super().__init__()
        if tau_schedule not in ("cosine", "constant"):
            raise ValueError(f"tau_schedule must be 'cosine' or 'constant', got {tau_schedule!r}")
        if not 0.0 <= tau_base <= 1.0:
            raise ValueError(f"tau_base must lie in [0, 1], got {tau_base}")
        self.encoder = encoder
        self.projector = mlp_head(feature_dim, hidden_dim, projection_dim)
        self.predictor = mlp_head(projection_dim, hidden_dim, projection_dim) if predictor else nn.Identity()
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.tau_base, self.tau_schedule, self.total_steps = tau_base, tau_schedule, total_steps
        self.tau = tau_base  # the rate used by the last update_target

    def online_params(self):
        """Parameters the optimiser updates (encoder, projector, predictor)."""
        return [*self.encoder.parameters(), *self.projector.parameters(), *self.predictor.parameters()]

    def tau_at(self, step: int) -> float:
        return byol_tau(step, self.total_steps, self.tau_base) if self.tau_schedule == "cosine" else self.tau_base

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """Symmetric BYOL loss of two augmented batches (B, C, H, W); scalar, in [0, 8]."""
        q1 = self.predictor(self.projector(self.encoder(view1)))
        q2 = self.predictor(self.projector(self.encoder(view2)))
        with torch.no_grad():
            z1 = self.target_projector(self.target_encoder(view1))
            z2 = self.target_projector(self.target_encoder(view2))
        return byol_loss(q1, z2) + byol_loss(q2, z1)

    @torch.no_grad()
    def update_target(self, step: int) -> float:
        """target <- tau * target + (1 - tau) * online, with tau at `step`; buffers (BatchNorm
        statistics) are copied. Returns tau."""
        tau = self.tau_at(step)
        for online, target in ((self.encoder, self.target_encoder), (self.projector, self.target_projector)):
            for p_o, p_t in zip(online.parameters(), target.parameters()):
                p_t.mul_(tau).add_(p_o.detach(), alpha=1.0 - tau)
            for b_o, b_t in zip(online.buffers(), target.buffers()):
                b_t.copy_(b_o)
        self.tau = tau
        return tau


def normalized_spread(outputs: torch.Tensor) -> float:
    """Mean over dimensions of the batch standard deviation of L2-normalised outputs (B, D).

    About 1/sqrt(D) when outputs spread over the sphere, 0 when they collapse to one point
    (the collapse measure of Chen & He 2021, "Exploring Simple Siamese Representation Learning").
    """
    return float(F.normalize(outputs.detach(), dim=1).std(dim=0).mean())
