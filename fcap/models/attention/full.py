"""Full cross-attention: every text token attends to all t * s visual tokens.

Cost O(q * t * s) (Sec. 4.2's baseline); memory grows linearly with frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from fcap.models.attention.base import CrossAttention, KeyValueAttention, head_dims, real_frames
from registry import CROSS_ATTENTIONS


@dataclass(frozen=True)
class FullAttentionConfig:
    heads: int = 16  # attention heads; paper: 16
    dim_head: Optional[int] = None  # per-head size; default LM hidden // heads (OPT-1.3B: 128)

    def __post_init__(self) -> None:
        if self.heads < 1:
            raise ValueError(f"heads: must be >= 1, got {self.heads}")
        if self.dim_head is not None and self.dim_head < 1:
            raise ValueError(f"dim_head: must be >= 1, got {self.dim_head}")


@CROSS_ATTENTIONS.register("full", config=FullAttentionConfig)
class FullCrossAttention(CrossAttention):
    """Attend over all t * s visual tokens (padded frames masked out)."""

    def __init__(self, cfg: FullAttentionConfig, *, dim: int, visual_dim: int) -> None:
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
