"""Pieces shared by the cross-attentions: the two-step API and a multi-head core.

Every built-in cross-attention splits its work in two so generation can reuse the
visual side: ``prepare(v, frame_mask)`` computes everything that depends only on
the video (keys, values, pooled or resampled tokens) once per sample, and
``attend(x, memory)`` runs the text queries against it for every new token and
beam. ``forward(x, v, frame_mask=...)`` (the registry contract) is the two in a row.
A plugin may implement only ``forward``; the adapter then recomputes per call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

Memory = tuple  # tuple of tensors (or None), batch first; see select_memory()


def real_frames(v: torch.Tensor, frame_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``frame_mask`` and zero padded frames.

    v: (b, t, s, d); frame_mask: (b, t) bool, True = real frame (None: all real).
    Returns (v with padded frames zeroed, mask). Zeroing means padded frames carry
    no information even where a value would otherwise leak in (0 * nan is nan).
    """
    if v.dim() != 4:
        raise ValueError(f"visual features must be (b, t, s, d), got shape {tuple(v.shape)}")
    b, t = v.shape[:2]
    if frame_mask is None:
        return v, torch.ones(b, t, dtype=torch.bool, device=v.device)
    if tuple(frame_mask.shape) != (b, t):
        raise ValueError(f"frame_mask must be (b, t) = {(b, t)}, got {tuple(frame_mask.shape)}")
    mask = frame_mask.to(device=v.device, dtype=torch.bool)
    if bool(mask.all()):
        return v, mask  # nothing padded: skip the copy
    if not bool(mask.any(dim=1).all()):
        empty = [i for i, ok in enumerate(mask.any(dim=1).tolist()) if not ok]
        raise ValueError(f"frame_mask: samples {empty} have no real frame (all False)")
    return v.masked_fill(~mask[:, :, None, None], 0.0), mask


def select_memory(memory, index: torch.Tensor):
    """Pick batch rows ``index`` of every tensor in a (nested) memory tuple."""
    if memory is None or isinstance(memory, str):
        return memory
    if isinstance(memory, torch.Tensor):
        return memory.index_select(0, index.to(memory.device))
    if isinstance(memory, (tuple, list)):
        return type(memory)(select_memory(m, index) for m in memory)
    if isinstance(memory, dict):
        return {k: select_memory(m, index) for k, m in memory.items()}
    raise TypeError(f"cannot select batch rows of a memory item of type {type(memory).__name__}")


class KeyValueAttention(nn.Module):
    """Multi-head attention of queries ``x: (b, q, dim)`` over ``kv: (b, n, kv_dim)``.

    Split into ``keys`` (once per video) and ``attend`` (per query). Returns the
    concatenated heads ``(b, q, heads * dim_head)``; the caller owns the output
    projection (separable attention concatenates two branches before it).
    """

    def __init__(self, *, dim: int, kv_dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(kv_dim, 2 * inner, bias=False)

    @property
    def inner_dim(self) -> int:
        return self.heads * self.dim_head

    def _split(self, y: torch.Tensor) -> torch.Tensor:  # (b, n, h*dh) -> (b, h, n, dh)
        b, n, _ = y.shape
        return y.view(b, n, self.heads, self.dim_head).transpose(1, 2)

    def keys(self, kv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """kv: (b, n, kv_dim) -> keys, values (b, heads, n, dim_head)."""
        k, v = self.to_kv(kv).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def attend(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | None) -> torch.Tensor:
        """x: (b, q, dim), k/v: (b, h, n, dh), mask: (b, n) bool or None -> (b, q, h*dh)."""
        q = self._split(self.to_q(x))
        attn_mask = None if mask is None else mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=attn_mask)
        b, _, n, _ = out.shape
        return out.transpose(1, 2).reshape(b, n, self.inner_dim)


class CrossAttention(nn.Module):
    """Base of the built-in cross-attentions: ``forward = attend(x, prepare(v, mask))``."""

    def prepare(self, v: torch.Tensor, frame_mask: torch.Tensor | None = None) -> Memory:
        raise NotImplementedError

    def attend(self, x: torch.Tensor, memory: Memory) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, v: torch.Tensor, *,
                frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (b, q, dim), v: (b, t, s, visual_dim), frame_mask: (b, t) -> (b, q, dim)."""
        return self.attend(x, self.prepare(v, frame_mask))


def head_dims(dim: int, heads: int, dim_head: int | None) -> int:
    """dim_head, defaulting to dim // heads (which must divide)."""
    if dim_head is not None:
        return dim_head
    if dim % heads:
        raise ValueError(f"heads: {heads} does not divide the LM hidden size {dim}; "
                         "set dim_head explicitly")
    return dim // heads


@dataclass(frozen=True)
class HeadsConfig:
    """Options of the ``full`` and ``separable`` cross-attentions."""

    heads: int = 16  # attention heads (of each branch, for separable); paper: 16
    dim_head: Optional[int] = None  # per-head size; default LM hidden // heads (OPT-1.3B: 128)

    def __post_init__(self) -> None:
        if self.heads < 1:
            raise ValueError(f"heads: must be >= 1, got {self.heads}")
        if self.dim_head is not None and self.dim_head < 1:
            raise ValueError(f"dim_head: must be >= 1, got {self.dim_head}")
