"""Frame datasets for pretraining: collect them by driving CarRacing, save, load, relabel, split.

    dataset = collect_frames("CarRacing-v2", 3000, ScriptedDriver(), seed=0)   # or FrameDataset.load
    dataset.save("frames.npz")

Dataset file (`.npz`, loaded with allow_pickle=False, written atomically):
    frames    uint8 (N, 3, 96, 96)  CarRacing's native frames, channels first; an encoder of
              another size gets them area-resized exactly as `envs.make(frame_size=...)` does
              (`envs.car_racing.area_resize`)
    episodes  int32 (N,)            episode index of each frame (held-out frames are whole episodes)
    actions   float32 (N, A)        the action executed after the frame
    labels    int64 (N,)            class of each frame (absent when unlabelled)
    meta      0-d str               JSON: format, env_id, driver, label_names, seed, ...

Drivers (who acts, and labels the frames) are in `hebbian.pretraining.drivers`.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

import envs
from envs.car_racing import NATIVE_FRAME
from es.checkpoint import atomic_write_bytes

DATASET_FORMAT = "hebbian-frames/1"


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
        atomic_write_bytes(path, buffer.getvalue())

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
    if not envs.task_for(env_id).pixels:
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
