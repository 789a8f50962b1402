"""Frozen pretrained encoders: `--encoder pretrained:PATH`.

A pretrained encoder is a pair of files written by `save_pretrained` (contrastive
pretraining, `scripts/pretrain.py`):

    PATH.pt     the encoder's state dict (`torch.save`; read with `weights_only=True`)
    PATH.json   its description: {"format", "kind" ("cnn", "vit-<mechanism>", "slots"),
                "options" (the encoder's constructor keywords), "obs_shape", "num_features",
                "weights" (the .pt file's name), "sha256" (of the .pt bytes), and whatever the
                trainer adds: objective, training settings, dataset, probe accuracy}

`PATH` may name either file (or the common stem). Loading re-hashes the weights and
refuses a file whose checksum differs from the description (or from the `sha256` option,
which a resumed run passes to be sure it still trains on the same encoder). The encoder is
frozen: `num_params == 0`, so evolution spends its whole budget on the plastic layers.

Kinds: "cnn" becomes the paper's Numba `PaperCNN` with the trained weights as fixed
parameters (same features as the torch module it was trained as, ~1e-6); "vit-<mechanism>"
a frozen `ViTEncoder`; "slots" a frozen `SlotEncoder`.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from es.checkpoint import atomic_write_bytes
from hebbian.encoders.cnn import CONV1_SHAPE, CONV2_SHAPE, PaperCNN

# torch (and the torch encoders ViTEncoder, SlotEncoder) are imported where they are used:
# `hebbian.presets` imports this module for `encoder_checksum`, and the plain MLP path must
# start without loading torch.

FORMAT = "hebbian-pretrained-encoder/1"


def encoder_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights .pt, description .json) named by `path` (either file, or their stem)."""
    p = Path(path)
    if p.suffix in (".pt", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".pt"), p.with_name(p.name + ".json")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_weights(path: str | os.PathLike) -> tuple[bytes, Path]:
    weights, _ = encoder_paths(path)
    try:
        return weights.read_bytes(), weights
    except FileNotFoundError:
        raise ValueError(f"pretrained encoder weights {weights} do not exist; "
                                f"create them with scripts/pretrain.py or fix the path") from None


def encoder_checksum(path: str | os.PathLike) -> str:
    """sha256 (hex) of the weights file that `pretrained:PATH` names; what config.json records.

    ValueError (one line) if the file does not exist."""
    data, _ = _read_weights(path)
    return _sha256(data)


def read_description(path: str | os.PathLike) -> dict:
    """The JSON description of the pretrained encoder at `path` (ValueError if missing or damaged)."""
    _, desc_path = encoder_paths(path)
    try:
        desc = json.loads(desc_path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{desc_path} is missing; a pretrained encoder needs its .json description "
                         f"next to the .pt file (written by scripts/pretrain.py)") from None
    except ValueError as e:
        raise ValueError(f"{desc_path} is not valid JSON ({e}); pretrain the encoder again") from None
    missing = [k for k in ("format", "kind", "options", "obs_shape", "num_features", "sha256") if k not in desc]
    if missing or desc.get("format") != FORMAT:
        raise ValueError(f"{desc_path} is not a pretrained-encoder description (format {desc.get('format')!r}, "
                         f"missing {missing}); pretrain the encoder again")
    return desc


def save_pretrained(path: str | os.PathLike, state_dict: dict, kind: str, options: dict,
                    obs_shape: tuple[int, ...], num_features: int, extra: dict | None = None) -> dict:
    """Write PATH.pt (the state dict) then PATH.json (the description, last: the commit mark).

    Args:
        state_dict: tensors of the encoder module (cnn: conv1.weight, conv2.weight; vit: a
            `ViT`'s; slots: a `SlotNet`'s).
        kind, options: how to rebuild it (`options` must be JSON-able keywords of the encoder).
        extra: more JSON-able entries for the description (objective, training, probe...).
    Returns the description written.
    """
    import torch  # lazy: start-up cost only (see the imports above)

    weights, desc_path = encoder_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(weights, data)
    desc = {"format": FORMAT, "kind": kind, "options": dict(options), "obs_shape": list(obs_shape),
            "num_features": int(num_features), "weights": weights.name, "sha256": _sha256(data), **(extra or {})}
    atomic_write_bytes(desc_path, (json.dumps(desc, indent=1) + "\n").encode())
    return desc


def cnn_flat_params(state_dict: dict) -> np.ndarray:
    """The paper CNN's flat float32 (1362,) vector from a torch state dict: conv1 then conv2, C order."""
    w1 = state_dict["conv1.weight"].detach().cpu().numpy()
    w2 = state_dict["conv2.weight"].detach().cpu().numpy()
    if w1.shape != CONV1_SHAPE or w2.shape != CONV2_SHAPE:
        raise ValueError(f"CNN weights have shapes {w1.shape}, {w2.shape}; the paper CNN needs {CONV1_SHAPE}, {CONV2_SHAPE}")
    return np.ascontiguousarray(np.concatenate([w1.ravel(), w2.ravel()]), dtype=np.float32)


class PretrainedEncoder:
    """A frozen encoder loaded from `path` (see the module docstring).

    Attributes: obs_shape, num_features (from the description, checked against the rebuilt
    encoder), num_params = 0, description (the JSON dict), checksum (sha256 of the weights).
    """

    num_params = 0

    def __init__(self, path: str | os.PathLike, sha256: str | None = None):
        import torch  # lazy: start-up cost only (see the imports above)

        data, weights_path = _read_weights(path)
        self.description = desc = read_description(path)
        self.checksum = _sha256(data)
        if self.checksum != desc["sha256"]:
            raise ValueError(f"{weights_path} does not match its description (sha256 mismatch); "
                             "the file is damaged or was replaced: pretrain the encoder again")
        if sha256 is not None and self.checksum != sha256:
            raise ValueError(f"{weights_path} has changed since this run started (sha256 {self.checksum[:12]}... "
                             f"!= recorded {sha256[:12]}...); restore the original file")
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as e:  # checksum matched but torch cannot read it: not a state dict
            raise ValueError(f"{weights_path} cannot be read as a torch state dict ({type(e).__name__}: {e})") from None
        kind, options = desc["kind"], dict(desc["options"])
        if kind == "cnn":
            self.inner = PaperCNN()
            self._flat = cnn_flat_params(state)  # held here: PaperCNN keeps views of it
            self.inner.set_params(self._flat)
        else:
            if kind.startswith("vit-"):
                from hebbian.encoders.vit import ViTEncoder  # lazy: loads torch

                self.inner = ViTEncoder(kind[len("vit-"):], **options)
            elif kind == "slots":
                from hebbian.encoders.slots import SlotEncoder  # lazy: loads torch

                self.inner = SlotEncoder(**options)
            else:
                raise ValueError(f"{path}: unknown encoder kind {kind!r}; expected cnn, vit-<mechanism> or slots")
            self.inner.net.load_state_dict(state)
            self.inner.net.eval().requires_grad_(False)
            # A worker acts on one thread (DESIGN, "Threads"); torch would otherwise start a
            # pool per process and oversubscribe the CPUs Ray gives one worker each.
            torch.set_num_threads(1)
        self.obs_shape = tuple(self.inner.obs_shape)
        self.num_features = int(self.inner.num_features)
        if list(self.obs_shape) != list(desc["obs_shape"]) or self.num_features != desc["num_features"]:
            raise ValueError(f"{path}: the rebuilt encoder takes {self.obs_shape} -> {self.num_features} features, "
                             f"the description says {tuple(desc['obs_shape'])} -> {desc['num_features']}; "
                             "pretrain the encoder again with this version")

    def set_params(self, flat: np.ndarray) -> None:
        """Frozen: accepts only an empty vector."""
        if np.size(flat):
            raise ValueError("a pretrained encoder is frozen (num_params = 0) and takes no parameters")

    def encode(self, obs: np.ndarray) -> np.ndarray:
        """(obs_shape) float32 in [0, 1] -> float32 (num_features,)."""
        return self.inner.encode(obs)


def load_pretrained_encoder(path: str, **options) -> PretrainedEncoder:
    """`make_encoder("pretrained:PATH", **options)`: the frozen encoder saved at PATH.

    Options: `sha256` (hex string) to require that exact weights file.
    """
    unknown = sorted(set(options) - {"sha256"})
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for a pretrained encoder; it accepts only sha256")
    if not path:
        raise ValueError("name the encoder file: --encoder pretrained:PATH (a .pt written by scripts/pretrain.py)")
    return PretrainedEncoder(path, **options)
