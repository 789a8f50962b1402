"""Contrastive pretraining of encoders on frames: collect a dataset, train, probe, save.

    dataset = collect_frames("CarRacing-v2", 3000, ScriptedDriver(), seed=0)   # or FrameDataset.load
    dataset.save("frames.npz")
    desc = pretrain_encoder(dataset, "cnn", TrainSettings(objective="supcon", steps=500), "encoders/cnn-supcon.pt")
    # -> encoders/cnn-supcon.pt + .json, usable as --encoder pretrained:encoders/cnn-supcon.pt

Dataset file (`.npz`, loaded with allow_pickle=False, written atomically):
    frames    uint8 (N, 3, 96, 96)  CarRacing's native frames, channels first; an encoder of
              another size gets them area-resized exactly as `envs.make(frame_size=...)` does
    episodes  int32 (N,)            episode index of each frame (held-out frames are whole episodes)
    actions   float32 (N, A)        the action executed after the frame
    labels    int64 (N,)            class of each frame (absent when unlabelled)
    meta      0-d str               JSON: format, env_id, driver, label_names, seed, ...

Drivers (who acts while frames are collected):
    RandomDriver     uniform random actions, each held for a few steps; no labels.
    ScriptedDriver   steers towards a point ahead on the track (the car's pose and
                     `env.unwrapped.track`), with random steering perturbations so that frames
                     also show the car off the racing line. Label: the discretised steering the
                     driver *wants* in that state (left / straight / right), a function of the
                     scene in the frame, not of the perturbation.
    AgentDriver      an evolved agent (a `Policy` and its parameters); label: its discretised
                     steering.

Training (`train_encoder`): every step draws a batch from a seeded generator, makes two
augmented views (`FrameAugment`) and minimises
    supcon   `supcon_loss` over projector outputs with the frame labels,
    simclr   the same without labels (NT-Xent),
    byol     `BYOL` (online predictor regressing an EMA target),
with Adam. Only the encoder is saved; the projector / predictor are dropped.

Linear probe (`linear_probe`): multinomial logistic regression on standardised frozen
features, full-batch L-BFGS in float64 (deterministic, no learning rate to tune), the L2
strength chosen from a small grid on a validation fifth of the training frames, then refit on
all training frames; accuracy on held-out *episodes* (frames within an episode are nearly
duplicates, so a random split would flatter every encoder).
"""
from __future__ import annotations

import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from hebbian.encoders.augment import FrameAugment
from hebbian.encoders.contrastive import BYOL, mlp_head, supcon_loss
from hebbian.encoders.pretrained import save_pretrained

DATASET_FORMAT = "hebbian-frames/1"
NATIVE_FRAME = 96
STEERING_LABELS = ("left", "straight", "right")
OBJECTIVES = ("supcon", "simclr", "byol")


# -- frames ------------------------------------------------------------------------------------
def area_resize(frames: np.ndarray, size: int) -> np.ndarray:
    """Frames (N, C, S, S), uint8 in [0, 255] or float in [0, 1] -> float32 (N, C, size, size) in [0, 1].

    The area average of `envs.make(..., frame_size=size)` (same matrices, float32; equal to
    its frames up to float rounding, ~1e-7), so an encoder sees the frames it will see in
    evolution. Batched matrix products in torch: ~20x faster than NumPy's einsum here.
    """
    from envs.car_racing import area_resize_matrix

    frames = np.asarray(frames)
    scale = 1 / 255 if frames.dtype == np.uint8 else 1.0
    x = torch.from_numpy(frames).to(torch.float32)
    if size == frames.shape[-1] == frames.shape[-2]:
        return (x * scale).numpy()
    rows = torch.from_numpy((area_resize_matrix(frames.shape[-2], size) * scale).astype(np.float32))
    cols = torch.from_numpy(area_resize_matrix(frames.shape[-1], size).T.astype(np.float32))
    return (rows @ x @ cols).clamp_(0.0, 1.0).numpy()


def discretize_steering(steer: float, threshold: float = 0.3) -> int:
    """Steering in [-1, 1] -> 0 left (< -threshold), 1 straight, 2 right (> threshold)."""
    return 0 if steer < -threshold else (2 if steer > threshold else 1)


# -- drivers -----------------------------------------------------------------------------------
class RandomDriver:
    """Uniform random actions from the action space, each held for `hold` steps; no labels."""

    name = "random"
    label_names = None

    def __init__(self, hold: int = 8):
        self.hold = hold

    def reset(self, env, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._left, self._action = 0, None

    def act(self, env, frame: np.ndarray):
        if self._left == 0:
            space = env.action_space
            self._action = (self._rng.uniform(space.low, space.high).astype(space.dtype))
            self._left = self.hold
        self._left -= 1
        return self._action, None


class ScriptedDriver:
    """CarRacing driver that steers towards the track point `lookahead` tiles ahead.

    steer = clip(-gain * angle between the car's heading and that point, -1, 1); gas
    `throttle` below `max_speed`, else coast. Every `hold` steps, with probability `perturb`,
    the executed steering is replaced by a uniform draw in [-amplitude, amplitude] for `hold`
    steps; the label stays the driver's own steering, i.e. the correction the scene calls for.
    `off_track()` tells the collector to end the episode once the car is lost.
    """

    name = "scripted"
    label_names = STEERING_LABELS

    def __init__(self, lookahead: int = 5, gain: float = 3.0, throttle: float = 0.3, max_speed: float = 35.0,
                 perturb: float = 0.15, amplitude: float = 0.8, hold: int = 6, threshold: float = 0.3,
                 max_distance: float = 15.0):
        self.lookahead, self.gain, self.throttle, self.max_speed = lookahead, gain, throttle, max_speed
        self.perturb, self.amplitude, self.hold, self.threshold = perturb, amplitude, hold, threshold
        self.max_distance = max_distance

    def reset(self, env, seed: int) -> None:
        track = getattr(env.unwrapped, "track", None)
        if track is None:
            raise ValueError("the scripted driver needs CarRacing (env.unwrapped.track); use the random driver")
        self._xy = np.array([(t[2], t[3]) for t in track], dtype=np.float64)
        self._rng = np.random.default_rng(seed)
        self._left, self._override, self._distance = 0, None, 0.0

    def act(self, env, frame: np.ndarray):
        hull = env.unwrapped.car.hull
        position = np.array(hull.position, dtype=np.float64)
        heading = np.array(hull.GetWorldVector((0, 1)), dtype=np.float64)
        distances = np.sum((self._xy - position) ** 2, axis=1)
        nearest = int(np.argmin(distances))
        self._distance = math.sqrt(distances[nearest])
        to_target = self._xy[(nearest + self.lookahead) % len(self._xy)] - position
        # Signed angle from heading to target (positive = target to the left); CarRacing
        # steers right for positive actions, hence the minus.
        angle = math.atan2(heading[0] * to_target[1] - heading[1] * to_target[0], heading @ to_target)
        steer = float(np.clip(-self.gain * angle, -1.0, 1.0))
        speed = float(np.hypot(*hull.linearVelocity))
        if self._left == 0:
            self._left = self.hold
            self._override = self._rng.uniform(-self.amplitude, self.amplitude) if self._rng.random() < self.perturb else None
        self._left -= 1
        executed = steer if self._override is None else self._override
        action = np.array([executed, self.throttle if speed < self.max_speed else 0.0, 0.0], dtype=np.float32)
        return action, discretize_steering(steer, self.threshold)

    def off_track(self) -> bool:
        return self._distance > self.max_distance


class AgentDriver:
    """An evolved agent: `policy` (a `hebbian.agent.Policy`) with flat `params`; label: its
    discretised steering. Its observations are the collected frames area-resized to its size."""

    name = "agent"
    label_names = STEERING_LABELS

    def __init__(self, policy, params: np.ndarray, threshold: float = 0.3):
        self.policy, self.params, self.threshold = policy, np.asarray(params, dtype=np.float32), threshold
        self.policy.set_params(self.params)

    def reset(self, env, seed: int) -> None:
        from hebbian.agent import episode_seeds

        self.policy.reset(episode_seeds(seed)[1])

    def act(self, env, frame: np.ndarray):
        obs = frame
        size = self.policy.encoder.obs_shape[-1] if self.policy.encoder is not None else frame.shape[-1]
        if size != frame.shape[-1]:
            obs = area_resize(frame[None], size)[0]
        action = np.asarray(self.policy.act(obs), dtype=np.float32)
        return action, discretize_steering(float(np.clip(action[0], -1, 1)), self.threshold)


# -- the dataset -------------------------------------------------------------------------------
@dataclass
class FrameDataset:
    """Frames and what came with them; see the module docstring for the file layout.

    Attributes: frames uint8 (N, 3, S, S); episodes int32 (N,); actions float32 (N, A);
    labels int64 (N,) or None; meta dict (env_id, driver, label_names, seed...).
    """

    frames: np.ndarray
    episodes: np.ndarray
    actions: np.ndarray
    labels: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def label_names(self) -> list[str] | None:
        return self.meta.get("label_names")

    def save(self, path: str | os.PathLike) -> None:
        """Write the `.npz` atomically (compressed: CarRacing's flat colours shrink ~10x)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"frames": self.frames, "episodes": self.episodes, "actions": self.actions,
                  "meta": np.array(json.dumps({"format": DATASET_FORMAT, **self.meta}))}
        if self.labels is not None:
            arrays["labels"] = self.labels
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FrameDataset":
        """Read a dataset written by `save`; ValueError (one line) if missing or not one."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except FileNotFoundError:
            raise ValueError(f"dataset {path} does not exist; collect one with scripts/pretrain.py") from None
        except Exception as e:
            raise ValueError(f"dataset {path} cannot be read ({type(e).__name__}: {e}); collect it again") from None
        missing = [k for k in ("frames", "episodes", "actions", "meta") if k not in arrays]
        if missing:
            raise ValueError(f"{path} is not a frame dataset (missing {', '.join(missing)}); collect it with scripts/pretrain.py")
        meta = json.loads(str(arrays["meta"]))
        if meta.pop("format", None) != DATASET_FORMAT:
            raise ValueError(f"{path} is not a {DATASET_FORMAT} dataset; collect it again")
        frames = arrays["frames"]
        if frames.dtype != np.uint8 or frames.ndim != 4:
            raise ValueError(f"{path}: frames must be uint8 (N, C, H, W), got {frames.dtype} {frames.shape}")
        return cls(frames, arrays["episodes"], arrays["actions"], arrays.get("labels"), meta)

    def with_labels(self, labels: np.ndarray, names: list[str] | None = None) -> "FrameDataset":
        """A copy whose labels are `labels` (int, (N,)), e.g. a column the user supplies."""
        labels = np.asarray(labels)
        if labels.shape != (len(self),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be {len(self)} whole numbers (one per frame), got {labels.dtype} {labels.shape}")
        meta = {**self.meta, "label_names": list(names) if names else [str(c) for c in range(int(labels.max()) + 1)],
                "label_source": "user"}
        return FrameDataset(self.frames, self.episodes, self.actions, labels.astype(np.int64), meta)


def read_label_column(path: str | os.PathLike) -> np.ndarray:
    """User labels: a `.npy` of integers, or a text/CSV file with one integer per line (a header line is skipped)."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            labels = np.load(path, allow_pickle=False)
        else:
            lines = [ln.strip().split(",")[0] for ln in path.read_text().splitlines() if ln.strip()]
            if lines and not lines[0].lstrip("-").isdigit():
                lines = lines[1:]
            labels = np.array([int(v) for v in lines], dtype=np.int64)
    except FileNotFoundError:
        raise ValueError(f"label file {path} does not exist") from None
    except ValueError as e:
        raise ValueError(f"label file {path} must hold one whole number per frame ({e})") from None
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0:
        raise ValueError(f"label file {path} must hold one non-negative whole number per frame")
    return labels.astype(np.int64)


def collect_frames(env_id: str, num_frames: int, driver, seed: int = 0, episode_frames: int = 250,
                   skip_start: int = 50, on_frame: Callable[[int], None] | None = None) -> FrameDataset:
    """Drive CarRacing with `driver` and keep `num_frames` frames (native 96x96, uint8).

    Args:
        driver: RandomDriver, ScriptedDriver, AgentDriver (or anything with reset(env, seed)
            and act(env, frame) -> (action, label or None)).
        seed: episode k is played with environment seed and driver seed derived from
            SeedSequence(seed).spawn (DESIGN, "Determinism").
        episode_frames: frames kept per episode at most; a new track starts afterwards, so the
            dataset covers several tracks.
        skip_start: frames skipped at the start of each episode (CarRacing zooms in during
            its first second; those frames never occur later).
        on_frame(count): called after each kept frame (progress display).
    """
    import envs

    if envs.task_family(envs.canonical_id(env_id)) != "car_racing":
        raise ValueError(f"frame collection supports CarRacing (pixel observations), not {env_id}")
    if num_frames < 1 or episode_frames < 1 or skip_start < 0:
        raise ValueError("num_frames and episode_frames must be positive, skip_start non-negative")
    env = envs.make(env_id, frame_size=NATIVE_FRAME, neg_reward_limit=None, max_episode_steps=skip_start + episode_frames + 1)
    frames = np.empty((num_frames, 3, NATIVE_FRAME, NATIVE_FRAME), dtype=np.uint8)
    episodes = np.empty(num_frames, dtype=np.int32)
    actions = np.empty((num_frames, int(np.prod(env.action_space.shape))), dtype=np.float32)
    labels = np.empty(num_frames, dtype=np.int64)
    labelled = True
    count, episode = 0, 0
    try:
        while count < num_frames:
            env_ss, driver_ss = np.random.SeedSequence(seed, spawn_key=(episode,)).spawn(2)
            obs, _ = env.reset(seed=int(env_ss.generate_state(1)[0]))
            driver.reset(env, int(driver_ss.generate_state(1)[0]))
            kept, step = 0, 0
            while kept < episode_frames and count < num_frames:
                action, label = driver.act(env, obs)
                if step >= skip_start:
                    # Frames are v * (1/255) in float32; rounding recovers the byte v exactly.
                    frames[count] = np.rint(obs * 255.0).astype(np.uint8)
                    episodes[count], actions[count] = episode, np.asarray(action, dtype=np.float32).reshape(-1)
                    labelled = labelled and label is not None
                    labels[count] = -1 if label is None else label
                    count, kept = count + 1, kept + 1
                    if on_frame is not None:
                        on_frame(count)
                obs, _, terminated, truncated, _ = env.step(action)
                step += 1
                lost = getattr(driver, "off_track", lambda: False)()
                if terminated or truncated or lost:
                    break
            episode += 1
    finally:
        env.close()
    meta = {"env_id": env_id, "driver": driver.name, "seed": seed, "episode_frames": episode_frames,
            "skip_start": skip_start, "label_names": list(driver.label_names) if labelled and driver.label_names else None}
    return FrameDataset(frames, episodes, actions, labels if labelled else None, meta)


def held_out_split(episodes: np.ndarray, fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): the last episodes, about `fraction` of the frames, are held out.

    With a single episode the last `fraction` of its frames are held out instead.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must lie in (0, 1), got {fraction}")
    episodes = np.asarray(episodes)
    index = np.arange(len(episodes))
    unique = np.unique(episodes)
    if len(unique) < 2:
        cut = int(round(len(episodes) * (1 - fraction)))
        cut = min(max(cut, 1), len(episodes) - 1)
        return index[:cut], index[cut:]
    test_episodes: list[int] = []
    for e in unique[::-1]:  # whole episodes from the end until the fraction is reached
        if np.isin(episodes, test_episodes).mean() >= fraction or len(test_episodes) == len(unique) - 1:
            break
        test_episodes.append(int(e))
    test = np.isin(episodes, test_episodes)
    return index[~test], index[test]


# -- trainable encoders ------------------------------------------------------------------------
class TorchPaperCNN(nn.Module):
    """The paper's CNN in torch, to train: (B, 3, 84, 84) -> (B, 648).

    conv 6@3x3 -> tanh -> maxpool 2 -> conv 8@5x5 stride 2 -> tanh -> maxpool 2 -> flatten, no
    biases: the same function as `PaperCNN` with params = conv1.weight then conv2.weight (C
    order), see `pretrained.cnn_flat_params`.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, bias=False)
        self.conv2 = nn.Conv2d(6, 8, 5, stride=2, bias=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.tanh(self.conv1(frames)), 2)
        x = nn.functional.max_pool2d(torch.tanh(self.conv2(x)), 2)
        return x.flatten(1)


class TrainableEncoder(nn.Module):
    """An encoder to pretrain: frames (B, C, H, W) -> features (B, num_features).

    Built by `build_trainable`. `net` is the module whose state dict is saved (and loads into
    the frozen encoder of `kind` with `options`); `features` computes what that frozen encoder
    will compute, in batches.
    """

    def __init__(self, kind: str, options: dict, net: nn.Module, obs_shape: tuple[int, ...], num_features: int,
                 slot_noise: torch.Tensor | None = None, seed: int = 0):
        super().__init__()
        self.kind, self.options, self.net = kind, dict(options), net
        self.obs_shape, self.num_features, self.seed = tuple(obs_shape), int(num_features), seed
        if slot_noise is not None:
            self.register_buffer("slot_noise", slot_noise, persistent=False)
        else:
            self.slot_noise = None

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if self.slot_noise is not None:
            return self.net(frames, self.slot_noise).flatten(1)
        return self.net(frames)

    @torch.no_grad()
    def features(self, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 frames (N, 3, S, S) at any size -> float32 (N, num_features), in eval mode.

        Reseeds torch's generator per batch with the encoder's seed, as the frozen ViT
        encoder does per frame, so mechanisms that draw at call time (LSH) hash alike.
        """
        was_training = self.training
        self.eval()
        out = []
        try:
            for start in range(0, len(frames), batch_size):
                x = torch.from_numpy(area_resize(frames[start:start + batch_size], self.obs_shape[-1]))
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    out.append(self(x).numpy())
        finally:
            self.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, self.num_features), np.float32)


def build_trainable(kind: str, seed: int = 0, **options) -> TrainableEncoder:
    """A trainable encoder of `kind` ("cnn", "vit-<mechanism>", "slots"), initialised from `seed`.

    `options` are the frozen encoder's keywords (ViTEncoder's / SlotEncoder's, e.g.
    image_size=64); "cnn" takes none. With no training, `features` equals the random frozen
    encoder with the same seed (the baseline of the benchmark).
    """
    if kind == "cnn":
        if options:
            raise ValueError(f"the cnn encoder takes no options, got {', '.join(options)}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = TorchPaperCNN()
        return TrainableEncoder("cnn", {}, net, (3, 84, 84), 648, seed=seed)
    for bad in ("weights", "evolve"):
        if bad in options:
            raise ValueError(f"option {bad!r} makes no sense for pretraining; leave it out")
    if kind.startswith("vit-"):
        from hebbian.encoders.vit import ViTEncoder

        frozen = ViTEncoder(kind[len("vit-"):], seed=seed, **options)
        noise = None
    elif kind == "slots":
        from hebbian.encoders.slots import SlotEncoder

        frozen = SlotEncoder(seed=seed, **options)
        noise = frozen.noise
    else:
        raise ValueError(f"unknown encoder {kind!r} for pretraining; choose cnn, vit-<mechanism> or slots")
    net = frozen.net.requires_grad_(True).train()
    return TrainableEncoder(kind, {**options, "seed": seed}, net, frozen.obs_shape, frozen.num_features,
                            slot_noise=noise, seed=seed)


# -- training ----------------------------------------------------------------------------------
@dataclass
class TrainSettings:
    """Hyperparameters of `train_encoder` (all recorded in the description).

    objective: "supcon", "simclr" or "byol". steps, batch_size, lr (Adam), weight_decay.
    temperature: SupCon / NT-Xent tau. projection_dim, hidden_dim: projector (and predictor) widths.
    tau_base: BYOL's starting EMA rate (cosine schedule to 1). seed: batches, augmentations, heads.
    augment: FrameAugment settings.
    """

    objective: str = "supcon"
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-6
    temperature: float = 0.1
    projection_dim: int = 64
    hidden_dim: int = 256
    tau_base: float = 0.996
    seed: int = 0
    augment: FrameAugment = field(default_factory=FrameAugment)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["augment"] = self.augment.to_dict()
        return d

    def check(self, labelled: bool) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if self.objective == "supcon" and not labelled:
            raise ValueError("supcon needs labelled frames; collect with a labelling driver, pass --labels, "
                             "or use simclr / byol")
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError("steps must be >= 1 and batch_size >= 2 (the heads use batch statistics)")


def train_encoder(encoder: TrainableEncoder, frames: np.ndarray, labels: np.ndarray | None,
                  settings: TrainSettings, on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Train `encoder` in place with `settings.objective` on uint8 frames (N, 3, S, S).

    labels: int (N,) (needed for supcon, ignored otherwise). on_step(step, loss) after each
    step (1-based). Returns the loss of every step.
    """
    settings.check(labels is not None)
    n = len(frames)
    if n < 2:
        raise ValueError(f"pretraining needs at least 2 frames, got {n}")
    batch_size = min(settings.batch_size, n)
    generator = torch.Generator().manual_seed(settings.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        if settings.objective == "byol":
            model = BYOL(encoder, encoder.num_features, settings.projection_dim, settings.hidden_dim,
                         tau_base=settings.tau_base, total_steps=settings.steps)
            params = model.online_params()
        else:
            head = mlp_head(encoder.num_features, settings.hidden_dim, settings.projection_dim)
            model = nn.ModuleDict({"encoder": encoder, "head": head})
            params = list(model.parameters())
    model.train()
    optimizer = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    label_tensor = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
    order, cursor = torch.randperm(n, generator=generator), 0
    losses = []
    for step in range(settings.steps):
        if cursor + batch_size > n:  # a fresh permutation per epoch: every frame seen once per epoch
            order, cursor = torch.randperm(n, generator=generator), 0
        idx = order[cursor:cursor + batch_size]
        cursor += batch_size
        x = torch.from_numpy(area_resize(frames[idx.numpy()], encoder.obs_shape[-1]))
        view1, view2 = settings.augment(x, generator), settings.augment(x, generator)
        if settings.objective == "byol":
            loss = model(view1, view2)
        else:
            z = model["head"](encoder(torch.cat([view1, view2])))
            z = torch.stack(z.split(len(idx)), dim=1)  # (B, 2 views, projection_dim)
            batch_labels = label_tensor[idx] if settings.objective == "supcon" else None
            loss = supcon_loss(z, batch_labels, settings.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if settings.objective == "byol":
            model.update_target(step)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"the {settings.objective} loss became {value} at step {step + 1}; lower the learning rate")
        losses.append(value)
        if on_step is not None:
            on_step(step + 1, value)
    encoder.eval()
    return losses


# -- linear probe ------------------------------------------------------------------------------
def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float) -> torch.Tensor:
    """Multinomial logistic regression by full-batch L-BFGS; x (N, D+1) float64 -> weights (D+1, K)."""
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], lr=1.0, max_iter=200, tolerance_grad=1e-7, tolerance_change=1e-10,
                                  history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        # The bias row (last) is not penalised.
        loss = nn.functional.cross_entropy(x @ w, y) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach()


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 l2_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1), val_fraction: float = 0.2,
                 seed: int = 0) -> dict:
    """Accuracy of a linear classifier on frozen features (see the module docstring).

    Args: train_x (N, D), train_y (N,) int, test_x (M, D), test_y (M,) int.
    Returns: {"accuracy" (test), "train_accuracy", "majority" (test accuracy of always
    predicting the most frequent training class), "l2", "num_train", "num_test", "num_classes"}.
    """
    train_y = np.asarray(train_y, dtype=np.int64)
    test_y = np.asarray(test_y, dtype=np.int64)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    mean = train_x.mean(axis=0, dtype=np.float64)
    std = train_x.std(axis=0, dtype=np.float64) + 1e-6

    def design(x):
        z = (np.asarray(x, dtype=np.float64) - mean) / std
        return torch.from_numpy(np.concatenate([z, np.ones((len(z), 1))], axis=1))

    xtr, xte = design(train_x), design(test_x)
    ytr, yte = torch.from_numpy(train_y), torch.from_numpy(test_y)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(train_y))
    n_val = max(1, int(len(perm) * val_fraction))
    val, fit = torch.from_numpy(perm[:n_val]), torch.from_numpy(perm[n_val:])
    best = None
    for l2 in l2_grid:
        w = fit_logistic(xtr[fit], ytr[fit], num_classes, l2)
        acc = float(((xtr[val] @ w).argmax(1) == ytr[val]).double().mean())
        if best is None or acc > best[0]:
            best = (acc, l2)
    l2 = best[1]
    w = fit_logistic(xtr, ytr, num_classes, l2)
    majority = int(np.bincount(train_y, minlength=num_classes).argmax())
    return {"accuracy": float(((xte @ w).argmax(1) == yte).double().mean()),
            "train_accuracy": float(((xtr @ w).argmax(1) == ytr).double().mean()),
            "majority": float(np.mean(test_y == majority)), "l2": l2,
            "num_train": int(len(train_y)), "num_test": int(len(test_y)), "num_classes": num_classes}


# -- the whole step ----------------------------------------------------------------------------
def pretrain_encoder(dataset: FrameDataset, kind: str, settings: TrainSettings, out_path: str | os.PathLike | None,
                     encoder_options: dict | None = None, held_out: float = 0.25, probe_random: bool = True,
                     on_step: Callable[[int, float], None] | None = None) -> dict:
    """Pretrain an encoder of `kind` on `dataset`, probe it, save it to `out_path` (.pt + .json).

    Training uses only the training episodes (`held_out_split`); when the dataset has labels
    the linear probe reports held-out accuracy of the trained features and, with
    `probe_random`, of the untrained encoder (same seed) as the baseline. `out_path=None`
    skips saving and returns the description with the trained TrainableEncoder under
    "_encoder"; otherwise returns the description as written to OUT's .json.
    """
    labels = dataset.labels
    settings.check(labels is not None)
    encoder = build_trainable(kind, seed=settings.seed, **(encoder_options or {}))
    if labels is not None:
        train_idx, test_idx = held_out_split(dataset.episodes, held_out)
    else:
        train_idx, test_idx = np.arange(len(dataset)), np.arange(0)
    probe = {}
    if labels is not None and probe_random:
        feats = encoder.features(dataset.frames)
        probe["random"] = linear_probe(feats[train_idx], labels[train_idx], feats[test_idx], labels[test_idx],
                                       seed=settings.seed)
    start = time.perf_counter()
    losses = train_encoder(encoder, dataset.frames[train_idx], None if labels is None else labels[train_idx],
                           settings, on_step)
    train_seconds = time.perf_counter() - start
    if labels is not None:
        feats = encoder.features(dataset.frames)
        probe["pretrained"] = linear_probe(feats[train_idx], labels[train_idx], feats[test_idx], labels[test_idx],
                                           seed=settings.seed)
    extra = {
        "objective": settings.objective,
        "training": {**settings.to_dict(), "train_seconds": round(train_seconds, 2),
                     "first_loss": losses[0], "final_loss": float(np.mean(losses[-10:]))},
        "dataset": {**dataset.meta, "num_frames": len(dataset), "num_train": int(len(train_idx)),
                    "num_held_out": int(len(test_idx))},
        "probe": probe or None,
    }
    if out_path is None:
        return {"kind": encoder.kind, "options": encoder.options, **extra, "_encoder": encoder}
    return save_pretrained(out_path, encoder.net.state_dict(), encoder.kind, encoder.options,
                           encoder.obs_shape, encoder.num_features, extra)
