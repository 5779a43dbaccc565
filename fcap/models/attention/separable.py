"""Separable cross-attention (Sec. 4.2): attend over time and over space separately.

For video ``v: (b, t, s, d)``:
- time branch: max-pool over space -> (b, t, d) -> LayerNorm -> attend over t;
- space branch: max-pool over time -> (b, s, d) -> LayerNorm -> attend over s;
- concatenate both along the hidden dimension, one linear layer back to ``dim``.
Cost O(q * (t + s)) instead of O(q * t * s): linear in frames with a tiny slope.
Padded frames are masked out of the time branch and excluded from the max over time.
Neither branch adds positions: frame order comes from the encoder's time embeddings.
"""
from __future__ import annotations


import torch
from torch import nn

from fcap.models.attention.base import (CrossAttention, HeadsConfig, KeyValueAttention, head_dims,
                                        real_frames)
from registry import CROSS_ATTENTIONS


@CROSS_ATTENTIONS.register("separable", config=HeadsConfig)
class SeparableCrossAttention(CrossAttention):
    """Sec. 4.2: max-pool space -> LN -> attend over time; max-pool time -> LN -> attend over space."""

    def __init__(self, cfg: HeadsConfig, *, dim: int, visual_dim: int) -> None:
        super().__init__()
        dim_head = head_dims(dim, cfg.heads, cfg.dim_head)
        self.norm_time = nn.LayerNorm(visual_dim)
        self.norm_space = nn.LayerNorm(visual_dim)
        self.time = KeyValueAttention(dim=dim, kv_dim=visual_dim, heads=cfg.heads, dim_head=dim_head)
        self.space = KeyValueAttention(dim=dim, kv_dim=visual_dim, heads=cfg.heads, dim_head=dim_head)
        self.to_out = nn.Linear(self.time.inner_dim + self.space.inner_dim, dim, bias=False)

    def prepare(self, v: torch.Tensor, frame_mask: torch.Tensor | None = None):
        v, mask = real_frames(v, frame_mask)
        per_frame = self.norm_time(v.amax(dim=2))  # (b, t, d): max over space
        if frame_mask is not None and not bool(mask.all()):  # padded frames never win the max
            v = v.masked_fill(~mask[:, :, None, None], torch.finfo(v.dtype).min)
        per_patch = self.norm_space(v.amax(dim=1))  # (b, s, d): max over time
        kt, vt = self.time.keys(per_frame)
        ks, vs = self.space.keys(per_patch)
        return (kt, vt, mask, ks, vs)

    def attend(self, x: torch.Tensor, memory) -> torch.Tensor:
        kt, vt, mask, ks, vs = memory
        over_time = self.time.attend(x, kt, vt, mask)
        over_space = self.space.attend(x, ks, vs, None)
        return self.to_out(torch.cat([over_time, over_space], dim=-1))
