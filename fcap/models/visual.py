"""Frozen video encoders (role ``"visual"``); the built-in family is TimeSformer.

The paper's encoder is TimeSformer divST 96x32 224 HowTo100M; convert its
original ``.pyth`` with ``python -m fcap.models.convert_timesformer``.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from fcap.models import sources
from fcap.models.tiny import TinyTimesformer, build_tiny_timesformer
from registry import MODELS


@dataclass(frozen=True)
class TimesformerSource:
    # hub id, local HF directory (e.g. from convert_timesformer), or "tiny"
    SOURCE_HELP: ClassVar[str] = (
        "the paper's TimeSformer (divST 96x32 224, HowTo100M) is on no hub: convert the "
        "original TimeSformer_divST_96x32_224_HowTo100M.pyth (facebookresearch/TimeSformer) "
        "with python -m fcap.models.convert_timesformer SRC.pyth DIR and give DIR")
    source: str = "facebook/timesformer-base-finetuned-k400"
    tiny: TinyTimesformer = field(default_factory=TinyTimesformer)

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError("source: give a hub id, a local directory or 'tiny'")


@dataclass(frozen=True)
class ImageSpec:
    """What the data pipeline needs to feed the encoder."""

    image_size: int  # square input side in pixels (paper: 224)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    num_frames: int  # the checkpoint's clip length (other lengths work too)


def image_spec(cfg: TimesformerSource) -> ImageSpec:
    """Image size and normalisation of a TimeSformer source, without loading weights."""
    from transformers import TimesformerConfig
    from transformers.models.videomae import VideoMAEImageProcessorPil

    path = _path(cfg)
    with sources.loading("model.visual.source", cfg.source):
        config = TimesformerConfig.from_pretrained(path)
        proc = VideoMAEImageProcessorPil.from_pretrained(path)
    return ImageSpec(image_size=int(config.image_size), mean=tuple(proc.image_mean),
                     std=tuple(proc.image_std), num_frames=int(config.num_frames))


def _path(cfg: TimesformerSource) -> str:
    return sources.resolve_source(cfg.source, key="model.visual.source", tiny_options=cfg.tiny,
                                  build_tiny=build_tiny_timesformer)


@MODELS.register("timesformer", config=TimesformerSource)
class TimesformerEncoder(nn.Module):
    """``TimesformerModel`` returning last hidden states as (b, t, s, d_v), CLS dropped."""

    role = "visual"
    family = "timesformer"

    def __init__(self, cfg: TimesformerSource) -> None:
        super().__init__()
        from transformers import TimesformerModel

        self.source = cfg.source
        path = _path(cfg)
        with sources.loading("model.visual.source", cfg.source):
            self.model = TimesformerModel.from_pretrained(path, dtype=torch.float32)
        config = self.model.config
        if config.attention_type != "divided_space_time":
            raise ValueError(f"model.visual.source {cfg.source!r}: attention_type "
                             f"{config.attention_type!r} not supported; expected divided_space_time")
        self.spec = image_spec(cfg)
        self.hidden_size = config.hidden_size
        self.num_patches = (config.image_size // config.patch_size) ** 2  # at the trained size
        self._identity = sources.identity(self.family, cfg.source, self.model)

    def identity(self) -> dict[str, str]:
        """Family, source and config/weights hashes (feature-cache keys, adapter manifests)."""
        return dict(self._identity)

    @contextmanager
    def _clip_shape(self, t: int, size: int):
        # TimesformerLayer splits its token sequence into frames with config.num_frames and
        # into rows with config.image_size // patch_size (the embeddings interpolate time
        # and position embeddings themselves): set both to this clip's for one call and
        # restore them, so any t (1 for images) and any crop (Sec. 6: 224-384 px) runs.
        config = self.model.config
        saved = config.num_frames, config.image_size
        config.num_frames, config.image_size = t, size
        try:
            yield
        finally:
            config.num_frames, config.image_size = saved

    def encode(self, pixel_values: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """pixel_values: (b, t, 3, H, W), frame_mask: (b, t) bool -> (b, t, s, d_v).

        Each video is encoded from its real frames only (TimeSformer's temporal
        attention would otherwise mix padded frames in); padded rows are zero.
        """
        if pixel_values.dim() != 5:
            raise ValueError(f"pixel_values must be (b, t, 3, H, W), got {tuple(pixel_values.shape)}")
        b, t, _, height, width = pixel_values.shape
        patch = self.model.config.patch_size
        if height != width or height < patch:
            raise ValueError(f"pixel_values: frames are {height}x{width}; {self.source!r} needs "
                             f"square frames of at least its patch size {patch} (trained at "
                             f"{self.spec.image_size}x{self.spec.image_size})")
        if frame_mask is None:
            return self._encode_clip(pixel_values)
        mask = frame_mask.to(device=pixel_values.device, dtype=torch.bool)
        counts = mask.sum(dim=1)
        out = pixel_values.new_zeros(b, t, (height // patch) ** 2, self.hidden_size)
        for n in sorted(set(counts.tolist())):
            if n == 0:
                raise ValueError("frame_mask: a sample has no real frame (all False)")
            rows = (counts == n).nonzero().flatten()
            clips = torch.stack([pixel_values[i][mask[i]] for i in rows.tolist()])
            feats = self._encode_clip(clips)
            for j, i in enumerate(rows.tolist()):
                out[i, mask[i]] = feats[j].to(out.dtype)
        return out

    def _encode_clip(self, clips: torch.Tensor) -> torch.Tensor:
        b, t, _, size = clips.shape[:4]
        with self._clip_shape(t, size):
            hidden = self.model(pixel_values=clips).last_hidden_state  # (b, 1 + s*t, d), (s t) order
        s, d = (hidden.shape[1] - 1) // t, hidden.shape[-1]
        return hidden[:, 1:].reshape(b, s, t, d).transpose(1, 2)
