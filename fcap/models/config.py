"""The ``model:`` block of an experiment: frozen LM, frozen visual encoder, adapters.

YAML shape (paper values)::

    model:
      lm: {name: opt, source: facebook/opt-1.3b}
      visual: {name: timesformer, source: /ckpt/timesformer_divST_96x32_224_howto100m}
      adapters:
        layers: [12, 14, 16, 18, 20, 22]
        attention: {name: separable, heads: 16}
        gate: {name: vector, init: 1.0}
        ffn_mult: 4
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fcap.config.schema import component
from registry import CROSS_ATTENTIONS, GATES, MODELS


@dataclass(frozen=True)
class AdaptersConfig:
    """Where adapters go and what they are made of (Sec. 4)."""

    # LM layer indices (0-based) that get an adapter in front of them; paper: 12..22 of
    # OPT-1.3B's 24, so backprop only runs through the last 12 layers.
    layers: list[int] = field(default_factory=lambda: [12, 14, 16, 18, 20, 22])
    # cross-attention from text to video (Sec. 4.2); paper: separable, 16 heads
    attention: Any = component(CROSS_ATTENTIONS, "separable")
    # tanh gate on both residual branches; paper: vector gate, init 1.0 (tanh(1) ~ 0.76)
    gate: Any = component(GATES, "vector")
    # FFN hidden size as a multiple of the LM hidden size; Flamingo/paper: 4
    ffn_mult: int = 4

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("layers: need at least one LM layer index for an adapter")
        if any(i < 0 for i in self.layers):
            raise ValueError(f"layers: indices must be >= 0, got {list(self.layers)}")
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"layers: duplicate index in {list(self.layers)}")
        if list(self.layers) != sorted(self.layers):
            raise ValueError(f"layers: must be increasing, got {list(self.layers)}")
        if self.ffn_mult < 1:
            raise ValueError(f"ffn_mult: must be >= 1, got {self.ffn_mult}")


@dataclass(frozen=True)
class ModelConfig:
    """FrozenCaptioner: frozen ``lm`` + frozen ``visual`` encoder + trainable ``adapters``."""

    # frozen decoder LM (role "lm"); paper: OPT-1.3B
    lm: Any = component(MODELS, "opt")
    # frozen video encoder (role "visual"); paper: TimeSformer divST 96x32 224 HowTo100M
    visual: Any = component(MODELS, "timesformer")
    adapters: AdaptersConfig = field(default_factory=AdaptersConfig)
