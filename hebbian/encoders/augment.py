"""Frame augmentations for contrastive pretraining, drawn per sample from a seeded generator.

Control frames are not photographs: the car sits at a fixed place, left and right mean
opposite actions and the colours are few and flat. So there are no flips (a mirrored road
bends the other way, and SupCon labels such as the steering direction would be wrong), the
crops are mild (most of the road must stay in view) and the shifts are a few pixels, as in
DrQ (Kostrikov et al. 2020) and RAD (Laskin et al. 2020), the augmentations that work for
pixel-based RL. Colour jitter and optional grayscale stop the encoder from telling frames
apart by the exact shade of the grass.

Every function takes frames as a float tensor (batch, C, H, W) in [0, 1] and a
`torch.Generator`; each sample gets its own draw, and the same generator state gives the
same result, so a pretraining run is reproducible from its seed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

# ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


def _uniform(batch: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(batch, generator=generator)


def grayscale(frames: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) luma."""
    r, g, b = frames.unbind(dim=1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def random_shift(frames: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """DrQ's shift: pad by `pad` pixels (edge replicated), crop back at a random integer offset.

    (B, C, H, W) -> (B, C, H, W); each sample moves by its own (dy, dx) in [-pad, pad].
    """
    if pad <= 0:
        return frames
    b, _, h, w = frames.shape
    padded = F.pad(frames, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator)
    return torch.stack([padded[i, :, y:y + h, x:x + w] for i, (y, x) in enumerate(offsets.tolist())])


def random_resized_crop(frames: torch.Tensor, scale: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """Crop a random square covering a fraction in `scale` of the area, resize back (bilinear).

    (B, C, H, W) -> (B, C, H, W). The aspect ratio is kept (stretching would change the
    apparent curvature of the road); the crop lies inside the frame.
    """
    low, high = scale
    if not 0 < low <= high <= 1:
        raise ValueError(f"crop scale must satisfy 0 < low <= high <= 1, got {scale}")
    if low == high == 1:
        return frames
    b = frames.shape[0]
    side = _uniform(b, low, high, generator).sqrt()  # crop side as a fraction of the frame
    # Centre in normalised coordinates [-1, 1], chosen so the crop stays inside the frame.
    cy = (1 - side) * (2 * torch.rand(b, generator=generator) - 1)
    cx = (1 - side) * (2 * torch.rand(b, generator=generator) - 1)
    theta = torch.zeros(b, 2, 3, dtype=frames.dtype)
    theta[:, 0, 0] = side
    theta[:, 1, 1] = side
    theta[:, 0, 2] = cx
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(frames.shape), align_corners=False)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(frames: torch.Tensor, brightness: float, contrast: float, saturation: float, hue: float,
                 generator: torch.Generator) -> torch.Tensor:
    """Per-sample colour jitter, applied in a fixed order (brightness, contrast, saturation, hue).

    (B, 3, H, W) -> (B, 3, H, W) in [0, 1]. Factors are uniform in [1 - s, 1 + s] for
    brightness (multiply), contrast (blend with the frame's mean luma) and saturation (blend
    with the pixel's luma); hue rotates the chroma plane of YIQ by an angle uniform in
    [-hue, hue] turns (hue <= 0.5), a cheap linear stand-in for an HSV hue shift.
    """
    b = frames.shape[0]
    out = frames
    if brightness > 0:
        out = out * _uniform(b, 1 - brightness, 1 + brightness, generator).view(b, 1, 1, 1)
    if contrast > 0:
        factor = _uniform(b, 1 - contrast, 1 + contrast, generator).view(b, 1, 1, 1)
        mean = grayscale(out.clamp(0, 1)).mean(dim=(1, 2, 3), keepdim=True)
        out = factor * out + (1 - factor) * mean
    if saturation > 0:
        factor = _uniform(b, 1 - saturation, 1 + saturation, generator).view(b, 1, 1, 1)
        out = factor * out + (1 - factor) * grayscale(out.clamp(0, 1))
    if hue > 0:
        if hue > 0.5:
            raise ValueError(f"hue is a fraction of a turn, at most 0.5, got {hue}")
        angle = _uniform(b, -hue, hue, generator) * 2 * torch.pi
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                              dtype=out.dtype)
        cos, sin = angle.cos(), angle.sin()
        rotation = torch.zeros(b, 3, 3, dtype=out.dtype)
        rotation[:, 0, 0] = 1
        rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
        rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
        # Per sample: RGB -> YIQ, rotate I/Q, back to RGB, as one 3x3 matrix.
        matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq  # (B, 3, 3)
        out = torch.einsum("bij,bjhw->bihw", matrix, out)
    return out.clamp(0, 1)


def random_grayscale(frames: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """With probability `p` per sample, replace the frame by its luma in all channels. (B, 3, H, W)."""
    if p <= 0:
        return frames
    chosen = (torch.rand(frames.shape[0], generator=generator) < p).view(-1, 1, 1, 1)
    return torch.where(chosen, grayscale(frames).expand_as(frames), frames)


@dataclass(frozen=True)
class FrameAugment:
    """The augmentation pipeline: crop -> shift -> colour jitter -> grayscale.

    Attributes:
        crop_scale: (low, high) area fraction of the random resized crop; (1, 1) turns it off.
        shift: pixels of DrQ random shift; 0 turns it off.
        brightness, contrast, saturation, hue: colour jitter strengths (0 = off); see
            `color_jitter`. Colour jitter and grayscale need 3-channel frames.
        jitter_p: probability that a sample is colour-jittered at all.
        grayscale_p: probability that a sample is turned to grayscale.

    Call with frames (B, C, H, W) float in [0, 1] and a torch.Generator; returns a new tensor
    of the same shape.
    """

    crop_scale: tuple[float, float] = (0.8, 1.0)
    shift: int = 4
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.05
    jitter_p: float = 0.8
    grayscale_p: float = 0.2

    def __call__(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if frames.ndim != 4:
            raise ValueError(f"augmentations take frames of shape (batch, C, H, W), got {tuple(frames.shape)}")
        out = random_resized_crop(frames, self.crop_scale, generator)
        out = random_shift(out, self.shift, generator)
        colour = self.brightness or self.contrast or self.saturation or self.hue or self.grayscale_p
        if colour and frames.shape[1] != 3:
            raise ValueError(f"colour jitter and grayscale need RGB frames, got {frames.shape[1]} channels; "
                             "set brightness, contrast, saturation, hue and grayscale_p to 0")
        if self.jitter_p > 0 and (self.brightness or self.contrast or self.saturation or self.hue):
            jittered = color_jitter(out, self.brightness, self.contrast, self.saturation, self.hue, generator)
            chosen = (torch.rand(out.shape[0], generator=generator) < self.jitter_p).view(-1, 1, 1, 1)
            out = torch.where(chosen, jittered, out)
        return random_grayscale(out, self.grayscale_p, generator)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["crop_scale"] = list(self.crop_scale)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FrameAugment":
        d = dict(d)
        if "crop_scale" in d:
            d["crop_scale"] = tuple(d["crop_scale"])
        return cls(**d)
