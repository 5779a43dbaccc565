"""Gated adapters and the explicit wrapper that puts one in front of an LM layer (Sec. 4).

Adapter (pre-norm, tanh-gated residual branches, as Flamingo's gated xattn block)::

    x = x + gate_a(xattn(ln_a(x), v))
    x = x + gate_f(ffn(ln_f(x)))

:class:`AdaptedLayer` replaces ``layers[i]`` of the frozen LM; it holds the
original layer unchanged and runs the adapter on the layer's input. Visual
context arrives as the ``visual_memory=`` keyword argument that transformers'
decoder passes to every layer (``{layer index: memory}``), so nothing is global.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from fcap.models.attention.base import CrossAttention


class Adapter(nn.Module):
    """Gated cross-attention + gated FFN on text states ``x: (b, q, dim)``."""

    def __init__(self, *, dim: int, visual_dim: int, attention, gate, ffn_mult: int) -> None:
        """``attention`` and ``gate`` are config Components (registry entry + options)."""
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.xattn = attention.build(dim=dim, visual_dim=visual_dim)
        self.gate_attn = gate.build(dim=dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_mult * dim), nn.GELU(), nn.Linear(ffn_mult * dim, dim))
        self.gate_ffn = gate.build(dim=dim)

    def prepare(self, v: torch.Tensor, frame_mask: torch.Tensor | None, *,
                precompute: bool = True) -> Any:
        """The video-only part of the cross-attention, computed once per sample.

        v: (b, t, s, visual_dim). Plugins that only implement ``forward``, and
        ``precompute=False`` (what reuse saves: bench/generation.py), get the raw
        inputs back, and every call recomputes the video side.
        """
        if precompute and isinstance(self.xattn, CrossAttention):
            return ("prepared", self.xattn.prepare(v, frame_mask))
        return ("raw", (v, frame_mask))

    def forward(self, x: torch.Tensor, memory: Any) -> torch.Tensor:
        """x: (b, q, dim), memory from :meth:`prepare` -> (b, q, dim)."""
        kind, payload = memory
        h = self.norm_attn(x)
        if kind == "prepared":
            a = self.xattn.attend(h, payload)
        else:
            v, frame_mask = payload
            a = self.xattn(h, v, frame_mask=frame_mask)
        x = x + self.gate_attn(a)
        return x + self.gate_ffn(self.ffn(self.norm_ffn(x)))


class AdaptedLayer(nn.Module):
    """``layers[index]`` of the frozen LM with an adapter run on its input."""

    def __init__(self, layer: nn.Module, adapter: Adapter, *, index: int) -> None:
        super().__init__()
        self.layer = layer
        self.adapter = adapter
        self.index = index

    def forward(self, hidden_states: torch.Tensor, *args: Any,
                visual_memory: Mapping[int, Any] | None = None, **kwargs: Any):
        """``visual_memory``: ``{layer index: Adapter.prepare(...)}``; the rest goes to the layer."""
        if visual_memory is None:
            raise ValueError("AdaptedLayer needs visual_memory=<adapter memories>; run the LM "
                             "through FrozenCaptioner, not through the wrapped transformers model")
        return self.layer(self.adapter(hidden_states, visual_memory[self.index]), *args, **kwargs)


def gate_values(adapters: Mapping[int, Adapter]) -> dict[str, torch.Tensor]:
    """A copy of every gate's tanh(g) (per dimension for vector gates), by ``layer<i>/attn|ffn``."""
    return {f"layer{i}/{branch}": gate.value().detach().float().cpu().clone()
            for i, adapter in adapters.items()
            for branch, gate in (("attn", adapter.gate_attn), ("ffn", adapter.gate_ffn))}


def gate_shift_max(before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor]) -> float:
    """Largest absolute change of any gate value (Figure 5: < 0.05 during fine-tuning)."""
    return max(float((after[k] - before[k]).abs().max()) for k in before)
