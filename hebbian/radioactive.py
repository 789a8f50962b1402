"""Radioactive frames: mark a pretraining dataset, then test whether an encoder was trained on it.

After Sablayrolles, Douze, Schmid & Jegou 2020, "Radioactive data: tracing through training".

    marked = mark(dataset.frames, dataset.labels, marker, fraction=0.1, epsilon=8, seed=0)
    write_key("frames.key.json", marked.key)                    # the owner keeps this secret
    result = detect(suspect_encoder, read_key("frames.key.json"), clean_frames, clean_labels)
    result.pvalue, result.verdict

Marking. A fixed *marking network* phi (a seeded random or a pretrained encoder of this
project; the key records how to rebuild it and a checksum of its weights) maps a frame to d
features. Every class k gets a secret unit *carrier* u_k in R^d, drawn from the seed. A
fraction of the frames is picked; each picked frame x of class k gets a perturbation delta
(pixel units 0..255, |delta| <= epsilon everywhere) that minimises, on random augmented
views A (pretraining's `FrameAugment`: DrQ shifts, i.e. pad-and-crop, colour jitter and
grayscale; see `MarkSettings.augment` for the resized crop),

    - (phi(A(x + delta)) - phi(A(x))) . u_k                         move along the carrier
    + feature_weight * ||phi(A(x + delta)) - phi(A(x))||^2          keep the features close
    + image_weight * mean((255 delta)^2)                            keep the image close

by Adam with projection onto the L-infinity ball; the marked frame is rounded back to uint8
within the bound. A model trained with labels on the marked frames learns "moved along u_k"
as evidence for class k, because it is, on the marked frames.

Detection (`detect`), on *clean* frames of the owner (never the marked ones: a probe fitted
on marked frames would pick up the carriers through any encoder, trained on them or not):
  1. psi = tested encoder's features (n, D), phi = marking network's features (n, d).
  2. Linear probe (multinomial logistic regression, L2, on standardised psi, as
     `hebbian.pretraining.probe.linear_probe`) on the labels; the class-k direction w_k in
     raw psi coordinates is the gradient of the class-k logit, weights / std.
  3. Alignment. Unless the tested encoder *is* the marking network (same features), fit
     psi ~= phi B by ridge least squares on the frames (B: d x D, centred features); then
     logit_k = w_k . psi ~= (B w_k) . phi, so v_k = B w_k is the class-k direction in the
     marking feature space (the paper's classifier W mapped through the alignment M).
  4. cos_k = cos(v_k, u_k); p_k = P(cos >= cos_k) for a uniformly random unit vector in R^d
     (`cosine_pvalue`); p = Fisher's combination of the p_k (`scipy.stats.combine_pvalues`).

Degrees of freedom. Under the null (the encoder never saw the marked frames) v_k is a
function of the clean frames, the labels, the tested encoder and the marking network only,
none of which depends on the carriers; the carriers are independent uniform unit vectors in
R^d. The cosine between *any* fixed vector and a uniform unit vector has the same law, so
cos_k has the exact null law with d = the marking network's feature dimension, whatever the
rank of B or the dimension of psi, and the K class p-values are independent (independent
carriers), which is what Fisher's method needs. p-values are therefore exact, not asymptotic.

Status (measured, BENCHMARKS): the test is exact under the null, marks stay within
epsilon, and a classifier trained on the marked frames in the marking network's own space is
detected (p = 0.004 at 10%). Encoders pretrained on marked frames are not: SupCon with a
probe on clean frames, and even the paper's own reading (a cross-entropy head's rows,
aligned), give the same p-values as the same training on clean frames. `python -m
benchmarks.radioactive_chain` measures why: marks of this strength are visible to an encoder
that never saw one (its response to the marks alone predicts the label, held-out accuracy
1.0), and the steering classes are separable without them, so training on 10% marked frames
moves the head towards the mark response by only 0.01-0.05 in cosine. Detection has no power
in this setting.

Key file (JSON, written atomically): format, seed, epsilon, fraction, indices, carriers
(K lists of d floats), label_names, and "marker": {"kind", "options", "seed" or "path", "sha256"}.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.special
import scipy.stats
import torch

from envs.car_racing import area_resize
from es.checkpoint import atomic_write_bytes
from hebbian.encoders.augment import FrameAugment
from hebbian.encoders.pretrained import (
    encoder_checksum,
    encoder_paths,
    read_description,
)
from hebbian.pretraining.probe import fit_logistic
from hebbian.pretraining.trainable import TrainableEncoder, build_trainable

KEY_FORMAT = "hebbian-radioactive-key/1"


# -- statistics --------------------------------------------------------------------------------
def cosine_pvalue(c: float | np.ndarray, d: int) -> float | np.ndarray:
    """P(cos(v, u) >= c) for a fixed v and u uniform on the unit sphere of R^d (d >= 2).

    cos^2 ~ Beta(1/2, (d-1)/2) with a symmetric sign, so for c >= 0 the tail is
    1/2 I_{1-c^2}((d-1)/2, 1/2) (regularised incomplete beta), and 1 - P(cos >= -c) for
    c < 0. 1 - c^2 is computed as (1 - c)(1 + c) to keep the tail accurate near c = 1.
    """
    if int(d) != d or d < 2:
        raise ValueError(f"the dimension must be a whole number >= 2, got {d}")
    c = np.clip(np.asarray(c, dtype=np.float64), -1.0, 1.0)
    a = np.abs(c)
    tail = 0.5 * scipy.special.betainc((d - 1) / 2, 0.5, (1 - a) * (1 + a))
    p = np.where(c >= 0, tail, 1.0 - tail)
    return float(p) if p.ndim == 0 else p


def random_carriers(num_classes: int, dim: int, seed: int) -> np.ndarray:
    """float64 (num_classes, dim): independent uniform unit vectors (normalised Gaussians) from `seed`."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x5AD,)))
    u = rng.standard_normal((num_classes, dim))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def psnr(marked: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Per-frame PSNR in dB of uint8 frames (N, ...) against the originals (peak 255; inf if equal)."""
    diff = marked.astype(np.float64) - original.astype(np.float64)
    mse = (diff.reshape(len(diff), -1) ** 2).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(255.0 ** 2 / mse)


# -- the marking network -----------------------------------------------------------------------
def state_checksum(encoder: TrainableEncoder) -> str:
    """sha256 of the encoder's weights (state dict in key order, float32 bytes): which network marked."""
    h = hashlib.sha256()
    for name, tensor in sorted(encoder.net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def trainable_from_file(path: str | os.PathLike) -> TrainableEncoder:
    """A pretrained encoder file (`scripts/pretrain.py`) as a differentiable `TrainableEncoder`.

    The marking network needs gradients, and the tested encoder is fastest batched in torch.
    Checks the file's sha256 against its description.
    """
    desc = read_description(path)
    weights, _ = encoder_paths(path)
    if encoder_checksum(path) != desc["sha256"]:
        raise ValueError(f"{weights} does not match its description (sha256 mismatch); pretrain the encoder again")
    options = dict(desc["options"])
    seed = options.pop("seed", 0)
    encoder = build_trainable(desc["kind"], seed=seed, **options)
    encoder.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    encoder.net.requires_grad_(False).eval()
    return encoder


def marker_description(encoder: TrainableEncoder, path: str | os.PathLike | None = None) -> dict:
    """What the key records about the marking network: how to rebuild it and its checksum."""
    desc = {"kind": encoder.kind, "options": {k: v for k, v in encoder.options.items() if k != "seed"},
            "num_features": encoder.num_features, "sha256": state_checksum(encoder)}
    if path is not None:
        desc["path"] = str(path)
    else:
        desc["seed"] = encoder.seed
    return desc


def load_marker(description: dict, path: str | os.PathLike | None = None) -> TrainableEncoder:
    """Rebuild the marking network a key describes (`path` overrides a moved file); checks its checksum."""
    source = path or description.get("path")
    if source is not None:
        encoder = trainable_from_file(source)
    else:
        encoder = build_trainable(description["kind"], seed=description["seed"], **description["options"])
    encoder.net.requires_grad_(False).eval()
    if state_checksum(encoder) != description["sha256"]:
        raise ValueError("the marking network rebuilt from the key has different weights (checksum mismatch); "
                         "pass the original marker file with --marker")
    return encoder


# -- marking -----------------------------------------------------------------------------------
@dataclass
class MarkSettings:
    """How marks are optimised (all recorded in the key).

    steps: Adam steps per batch; lr: Adam step size in pixel units (0..255);
    feature_weight: weight of ||phi(x~) - phi(x)||^2; image_weight: weight of the mean squared
    perturbation in pixel units; batch_size: frames marked together; augment: views the
    marks must survive (pretraining's `FrameAugment` by default).
    """

    steps: int = 60
    lr: float = 1.0
    feature_weight: float = 0.02
    image_weight: float = 1e-3
    batch_size: int = 64
    augment: FrameAugment = field(default_factory=lambda: FrameAugment(crop_scale=(1.0, 1.0)))

    def to_dict(self) -> dict:
        return {**{k: v for k, v in self.__dict__.items() if k != "augment"}, "augment": self.augment.to_dict()}


@dataclass
class MarkResult:
    """frames: uint8 (N, 3, S, S), the marked ones replaced; indices: int64 (M,) marked rows;
    carriers: float64 (K, d); key: the key file's dict; psnr: float64 (M,) dB per marked frame;
    shift: float64 (M,) (phi(x~) - phi(x)) . u_label of each marked frame, unaugmented."""

    frames: np.ndarray
    indices: np.ndarray
    carriers: np.ndarray
    key: dict
    psnr: np.ndarray
    shift: np.ndarray


def mark(frames: np.ndarray, labels: np.ndarray, marking_encoder: TrainableEncoder, fraction: float,
         epsilon: float, seed: int, settings: MarkSettings | None = None, marker_path: str | None = None,
         label_names: list[str] | None = None) -> MarkResult:
    """Mark `fraction` of uint8 frames (N, 3, S, S) with labels int (N,) (see the module docstring).

    epsilon: L-infinity bound in pixel units (0..255). seed: picks the frames, draws the
    carriers (one per class, in the marking network's feature space) and the augmentations.
    marker_path: the file the marking network came from, recorded in the key instead of its seed.
    """
    settings = settings or MarkSettings()
    frames = np.asarray(frames)
    labels = np.asarray(labels)
    if frames.dtype != np.uint8 or frames.ndim != 4:
        raise ValueError(f"frames must be uint8 (N, C, H, W), got {frames.dtype} {frames.shape}")
    if labels.shape != (len(frames),) or not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0:
        raise ValueError("marking needs one non-negative class label per frame; label the dataset first (--labels)")
    if not 0 < fraction <= 1:
        raise ValueError(f"the marked fraction must lie in (0, 1], got {fraction}")
    if not 0 < epsilon <= 255:
        raise ValueError(f"epsilon is a pixel bound in (0, 255], got {epsilon}")
    num_classes = int(labels.max()) + 1
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x1DE,)))
    count = max(1, round(fraction * len(frames)))
    indices = np.sort(rng.choice(len(frames), size=count, replace=False)).astype(np.int64)
    carriers = random_carriers(num_classes, marking_encoder.num_features, seed)

    marker = marking_encoder
    marker.net.requires_grad_(False).eval()
    size = marker.obs_shape[-1]
    bound = float(epsilon) / 255.0
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence(seed, spawn_key=(0xA06,)).generate_state(1)[0]))
    u_all = torch.from_numpy(carriers.astype(np.float32))
    marked = frames.copy()
    for start in range(0, count, settings.batch_size):
        idx = indices[start:start + settings.batch_size]
        x = torch.from_numpy(frames[idx]).to(torch.float32) / 255.0
        u = u_all[torch.from_numpy(labels[idx])]
        delta = torch.zeros_like(x, requires_grad=True)
        optimizer = torch.optim.Adam([delta], lr=settings.lr / 255.0)
        for _ in range(settings.steps):
            # The same augmentation for the marked and the original frame (copied generator
            # state), so the feature terms compare like with like.
            state = generator.get_state()
            # Resized unclipped (the input is clamped already; only float rounding could exceed 1).
            view = settings.augment(area_resize((x + delta).clamp(0, 1), size, clip=False), generator)
            twin = torch.Generator()
            twin.set_state(state)
            with torch.no_grad():
                reference = marker(settings.augment(area_resize(x, size, clip=False), twin))
            moved = marker(view) - reference
            loss = (-(moved * u).sum(1).mean() + settings.feature_weight * (moved ** 2).sum(1).mean()
                    + settings.image_weight * ((255.0 * delta) ** 2).mean())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                delta.clamp_(-bound, bound)
        # Round to bytes, then hold the integer perturbation within floor(epsilon) so the
        # stored frame respects the bound exactly.
        original = frames[idx].astype(np.int16)
        changed = np.rint((x + delta.detach()).clamp(0, 1).numpy() * 255.0).astype(np.int16)
        limit = math.floor(epsilon)
        marked[idx] = np.clip(changed, original - limit, original + limit).clip(0, 255).astype(np.uint8)

    shift = (marker.features(marked[indices]).astype(np.float64) - marker.features(frames[indices])) @ carriers.T
    shift = shift[np.arange(count), labels[indices]]
    key = {"format": KEY_FORMAT, "seed": int(seed), "epsilon": float(epsilon), "fraction": float(fraction),
           "num_frames": len(frames), "indices": indices.tolist(), "num_classes": num_classes,
           "label_names": list(label_names) if label_names else None,
           "marker": marker_description(marker, marker_path), "settings": settings.to_dict(),
           "carriers": carriers.tolist()}
    return MarkResult(marked, indices, carriers, key, psnr(marked[indices], frames[indices]), shift)


# -- the key file ------------------------------------------------------------------------------
def write_key(path: str | os.PathLike, key: dict) -> None:
    """Write the key JSON atomically (temp file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(key) + "\n").encode())


def read_key(path: str | os.PathLike) -> dict:
    """Read a key written by `write_key`; ValueError (one line) if missing or not a key."""
    try:
        key = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"key file {path} does not exist; it is written by scripts/radioactive.py mark") from None
    except ValueError as e:
        raise ValueError(f"key file {path} is not valid JSON ({e}); use the key written when marking") from None
    if not isinstance(key, dict) or key.get("format") != KEY_FORMAT or "carriers" not in key or "marker" not in key:
        raise ValueError(f"{path} is not a radioactive key ({KEY_FORMAT}); use the key written when marking")
    return key


# -- detection ---------------------------------------------------------------------------------
@dataclass
class Detection:
    """pvalue: Fisher-combined p-value; cosines, pvalues: per class; dim: d of the test;
    aligned: whether features were aligned by least squares; probe_accuracy: training
    accuracy of the probe (a sanity check that the labels are learnable); verdict: one line."""

    pvalue: float
    cosines: list[float]
    pvalues: list[float]
    dim: int
    aligned: bool
    probe_accuracy: float
    verdict: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def probe_directions(features: np.ndarray, labels: np.ndarray, num_classes: int, l2: float = 1e-3) -> tuple[np.ndarray, float]:
    """Class directions of a multinomial logistic probe: float64 (K, D) in raw feature units, train accuracy.

    Fitted on standardised features (as `linear_probe`), then divided by the std, so row k is
    the gradient of the class-k logit with respect to the raw features.
    """
    f = np.asarray(features, dtype=np.float64)
    mean, std = f.mean(0), f.std(0) + 1e-6
    x = torch.from_numpy(np.concatenate([(f - mean) / std, np.ones((len(f), 1))], axis=1))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    w = fit_logistic(x, y, num_classes, l2).numpy()  # (D + 1, K), last row the bias
    accuracy = float(((x.numpy() @ w).argmax(1) == y.numpy()).mean())
    return (w[:-1] / std[:, None]).T, accuracy


def align(source: np.ndarray, target: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
    """B (d, D) minimising ||target_c - source_c B||^2 + lam ||B||^2 on centred features.

    source (n, d) marking features, target (n, D) tested features; lam = ridge * mean
    eigenvalue of source_c' source_c, an isotropic penalty (it favours no direction of R^d, so
    the test stays blind to where the carriers are).
    """
    s = np.asarray(source, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    s = s - s.mean(0)
    t = t - t.mean(0)
    gram = s.T @ s
    lam = ridge * np.trace(gram) / len(gram)
    return np.linalg.solve(gram + lam * np.eye(len(gram)), s.T @ t)


def detect(encoder: TrainableEncoder, key: dict, frames: np.ndarray, labels: np.ndarray,
           marking_encoder: TrainableEncoder | None = None, l2: float = 1e-3, ridge: float = 1e-2,
           alpha: float = 1e-3) -> Detection:
    """Was `encoder` trained on the frames `key` marked? (see the module docstring).

    frames: clean uint8 frames (N, 3, S, S), labels int (N,): the owner's unmarked frames.
    marking_encoder: the marking network, rebuilt from the key when None. alpha: the
    significance level the verdict uses.
    """
    carriers = np.asarray(key["carriers"], dtype=np.float64)
    num_classes, dim = carriers.shape
    labels = np.asarray(labels)
    if labels.shape != (len(frames),):
        raise ValueError(f"detection needs one label per frame: {len(frames)} frames, labels {labels.shape}")
    if labels.max(initial=0) >= num_classes:
        raise ValueError(f"labels go up to {int(labels.max())} but the key has {num_classes} classes; "
                         "use the labels the dataset was marked with")
    marker = marking_encoder or load_marker(key["marker"])
    if marker.num_features != dim:
        raise ValueError(f"the marking network has {marker.num_features} features, the key's carriers {dim}")
    same = encoder is marker or (encoder.kind == marker.kind and encoder.num_features == dim
                                 and state_checksum(encoder) == key["marker"]["sha256"])
    directions, accuracy = marker_space_directions(encoder, marker, frames, labels, num_classes, l2, ridge, not same)
    return score(directions, carriers, alpha, aligned=not same, probe_accuracy=accuracy)


def marker_space_directions(encoder: TrainableEncoder, marker: TrainableEncoder, frames: np.ndarray,
                            labels: np.ndarray, num_classes: int, l2: float = 1e-3, ridge: float = 1e-2,
                            aligned: bool = True) -> tuple[np.ndarray, float]:
    """Steps 1-3 of detection: the probe's class directions in the marking feature space, float64 (K, d).

    Depends on the frames, labels and the two encoders only, never on a key: under the null
    these are fixed vectors and any number of keys can be scored against them (`score`).
    """
    tested = encoder.features(frames).astype(np.float64)
    directions, accuracy = probe_directions(tested, labels, num_classes, l2)
    if aligned:
        directions = (align(marker.features(frames), tested, ridge) @ directions.T).T  # (K, d)
    return directions, accuracy


def score(directions: np.ndarray, carriers: np.ndarray, alpha: float = 1e-3, aligned: bool = True,
          probe_accuracy: float = float("nan")) -> Detection:
    """Step 4: cosines of class directions (K, d) with the carriers (K, d), exact p-values, Fisher, verdict."""
    dim = carriers.shape[1]
    norms = np.linalg.norm(directions, axis=1) * np.linalg.norm(carriers, axis=1)
    cosines = np.einsum("kd,kd->k", directions, carriers) / np.maximum(norms, 1e-300)
    pvalues = np.atleast_1d(cosine_pvalue(cosines, dim))
    pvalue = float(scipy.stats.combine_pvalues(pvalues, method="fisher").pvalue)
    if pvalue < alpha:
        verdict = f"marked: the encoder was trained on the marked frames (p = {pvalue:.2g} < {alpha:g})"
    else:
        verdict = f"no evidence of training on the marked frames (p = {pvalue:.2g} >= {alpha:g})"
    return Detection(pvalue, cosines.tolist(), pvalues.tolist(), dim, aligned, probe_accuracy, verdict)
