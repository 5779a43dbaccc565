"""Pixels for the visual encoder: resize, centre-crop, normalise (Sec. 5.2: 224 or 320 px)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Preprocess:
    """uint8 frames (t, H, W, 3) -> float32 (t, 3, size, size).

    The shorter side is resized to ``image_size`` (bilinear, antialiased), the
    centre ``image_size`` square is cropped, values are scaled to [0, 1] and
    normalised with ``mean``/``std`` -- the visual encoder's own image
    processor statistics, passed in by the training task.
    """

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if self.image_size < 1:
            raise ValueError(f"Preprocess: image_size must be >= 1, got {self.image_size}")
        for name in ("mean", "std"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3:
                raise ValueError(f"Preprocess: {name} must have 3 values (RGB), got {value}")
            object.__setattr__(self, name, value)
        if min(self.std) <= 0:
            raise ValueError(f"Preprocess: std must be positive, got {self.std}")

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        if not frames.flags.writeable:  # PIL hands out read-only arrays
            frames = frames.copy()
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        h, w = x.shape[-2:]
        size = self.image_size
        scale = size / min(h, w)
        new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
        if (new_h, new_w) != (h, w):
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True,
                              align_corners=False)
        top, left = (new_h - size) // 2, (new_w - size) // 2
        x = x[:, :, top:top + size, left:left + size] / 255.0
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous()

    def identity(self) -> dict:
        """What the feature cache key records about pixels."""
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std)}


def as_stats(values: Sequence[float] | float) -> tuple[float, float, float]:
    """Accept a scalar or 3 values (image processors give either)."""
    if isinstance(values, (int, float)):
        return (float(values),) * 3
    return tuple(float(v) for v in values)  # type: ignore[return-value]
