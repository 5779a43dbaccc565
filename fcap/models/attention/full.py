"""Full cross-attention: every text token attends to all t * s visual tokens.

Cost O(q * t * s) (Sec. 4.2's baseline); memory grows linearly with frames.
"""
from __future__ import annotations


import torch
from torch import nn

from fcap.models.attention.base import (CrossAttention, HeadsConfig, KeyValueAttention, head_dims,
                                        real_frames)
from registry import CROSS_ATTENTIONS


@CROSS_ATTENTIONS.register("full", config=HeadsConfig)
class FullCrossAttention(CrossAttention):
    """Attend over all t * s visual tokens (padded frames masked out)."""

    def __init__(self, cfg: HeadsConfig, *, dim: int, visual_dim: int) -> None:
        super().__init__()
        self.attn = KeyValueAttention(dim=dim, kv_dim=visual_dim, heads=cfg.heads,
                                      dim_head=head_dims(dim, cfg.heads, cfg.dim_head))
        self.to_out = nn.Linear(self.attn.inner_dim, dim, bias=False)

    def prepare(self, v: torch.Tensor, frame_mask: torch.Tensor | None = None):
        v, mask = real_frames(v, frame_mask)
        b, t, s, d = v.shape
        k, val = self.attn.keys(v.reshape(b, t * s, d))
        token_mask = mask[:, :, None].expand(b, t, s).reshape(b, t * s)
        return (k, val, token_mask)

    def attend(self, x: torch.Tensor, memory) -> torch.Tensor:
        k, v, mask = memory
        return self.to_out(self.attn.attend(x, k, v, mask))
