"""Encoders of pixel observations, chosen by name (`--encoder NAME`).

`make_encoder(name, **options)` builds one. Modules are imported only when their encoder is
asked for, so that the plain MLP path never imports torch.
"""
from __future__ import annotations

import importlib

from hebbian.encoders.base import Encoder

# name -> "module:factory". A factory takes keyword options and returns an Encoder.
_REGISTRY = {
    "cnn": "hebbian.encoders.cnn:PaperCNN",
    "patch-attention": "hebbian.encoders.patch_attention:PatchAttentionEncoder",
    "slots": "hebbian.encoders.slots:SlotEncoder",
}
# Names with a parameter after the prefix, e.g. "vit-linformer" or "pretrained:PATH".
_PREFIXED = {
    "vit-": "hebbian.encoders.vit:make_vit_encoder",
    "pretrained:": "hebbian.encoders.pretrained:load_pretrained_encoder",
}


def encoder_names() -> list[str]:
    """Names accepted by `make_encoder` (prefixed families shown with a placeholder)."""
    return sorted(_REGISTRY) + ["vit-<mechanism>", "pretrained:<path>"]


def _load(target: str):
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


def make_encoder(name: str, **options) -> Encoder:
    """Build the encoder called `name` with its keyword `options`.

    Raises ValueError with the list of known names when `name` is unknown.
    """
    if name in _REGISTRY:
        return _load(_REGISTRY[name])(**options)
    for prefix, target in _PREFIXED.items():
        if name.startswith(prefix):
            return _load(target)(name[len(prefix):], **options)
    raise ValueError(f"unknown encoder {name!r}; choose one of: {', '.join(encoder_names())}")


__all__ = ["Encoder", "make_encoder", "encoder_names"]
