"""Perceiver resampler (Flamingo) as the alternative to separable attention.

A fixed set of learned latents cross-attends to all t * s visual tokens (plus
themselves) ``depth`` times, with a learned embedding added per frame; the
adapter's text queries then attend to the latents. Unlike Flamingo, which shares
one resampler across the model, each adapter owns one (the registry builds a
cross-attention per adapter); the paper found separable attention faster and
easier to train at equal LM quality.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from fcap.models.attention.base import CrossAttention, KeyValueAttention, head_dims, real_frames
from registry import CROSS_ATTENTIONS


@dataclass(frozen=True)
class PerceiverConfig:
    heads: int = 16  # heads of the text -> latents attention; paper: 16
    dim_head: Optional[int] = None  # default LM hidden // heads
    num_latents: int = 64  # learned latents; Flamingo: 64
    depth: int = 6  # resampler layers; Flamingo: 6
    resampler_heads: int = 8  # heads inside the resampler; Flamingo: 8
    resampler_dim_head: int = 64  # per-head size inside the resampler; Flamingo: 64
    max_frames: int = 128  # time embeddings available (paper's clips: 96 frames)
    ff_mult: int = 4  # resampler FFN width multiple

    def __post_init__(self) -> None:
        for name in ("heads", "num_latents", "depth", "resampler_heads", "resampler_dim_head",
                     "max_frames", "ff_mult"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")


class _ResamplerLayer(nn.Module):
    def __init__(self, d: int, heads: int, dim_head: int, ff_mult: int) -> None:
        super().__init__()
        self.norm_media = nn.LayerNorm(d)
        self.norm_latents = nn.LayerNorm(d)
        self.attn = KeyValueAttention(dim=d, kv_dim=d, heads=heads, dim_head=dim_head)
        self.to_out = nn.Linear(self.attn.inner_dim, d, bias=False)
        self.ff = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, ff_mult * d, bias=False), nn.GELU(),
                                nn.Linear(ff_mult * d, d, bias=False))

    def forward(self, media: torch.Tensor, mask: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        lat = self.norm_latents(latents)
        kv = torch.cat([self.norm_media(media), lat], dim=1)
        kv_mask = torch.cat([mask, mask.new_ones(mask.shape[0], lat.shape[1])], dim=1)
        k, v = self.attn.keys(kv)
        latents = latents + self.to_out(self.attn.attend(lat, k, v, kv_mask))
        return latents + self.ff(latents)


@CROSS_ATTENTIONS.register("perceiver", config=PerceiverConfig)
class PerceiverCrossAttention(CrossAttention):
    """Flamingo resampler to ``num_latents`` tokens, then text attends to the latents."""

    def __init__(self, cfg: PerceiverConfig, *, dim: int, visual_dim: int) -> None:
        super().__init__()
        self.max_frames = cfg.max_frames
        self.latents = nn.Parameter(torch.randn(cfg.num_latents, visual_dim) * 0.02)
        self.time_emb = nn.Parameter(torch.randn(cfg.max_frames, visual_dim) * 0.02)
        self.layers = nn.ModuleList(
            _ResamplerLayer(visual_dim, cfg.resampler_heads, cfg.resampler_dim_head, cfg.ff_mult)
            for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(visual_dim)
        self.attn = KeyValueAttention(dim=dim, kv_dim=visual_dim, heads=cfg.heads,
                                      dim_head=head_dims(dim, cfg.heads, cfg.dim_head))
        self.to_out = nn.Linear(self.attn.inner_dim, dim, bias=False)

    def resample(self, v: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """v: (b, t, s, d) -> latents (b, num_latents, d)."""
        v, mask = real_frames(v, frame_mask)
        b, t, s, d = v.shape
        if t > self.max_frames:
            raise ValueError(f"perceiver: {t} frames exceed max_frames={self.max_frames}; "
                             "raise model.adapters.attention.max_frames")
        media = (v + self.time_emb[:t, None, :].to(v.dtype)).reshape(b, t * s, d)
        token_mask = mask[:, :, None].expand(b, t, s).reshape(b, t * s)
        latents = self.latents.to(v.dtype).expand(b, -1, -1)
        for layer in self.layers:
            latents = layer(media, token_mask, latents)
        return self.norm(latents)

    def prepare(self, v: torch.Tensor, frame_mask: torch.Tensor | None = None):
        k, val = self.attn.keys(self.resample(v, frame_mask))
        return (k, val)

    def attend(self, x: torch.Tensor, memory) -> torch.Tensor:
        k, v = memory
        return self.to_out(self.attn.attend(x, k, v, None))
