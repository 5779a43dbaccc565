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
from typing import Any, Literal

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


@dataclass(frozen=True)
class DecodingConfig:
    """How captions are decoded (fcap/models/generation.py; transformers ``generate()``).

    greedy (the paper's choice: "no beam search"), nucleus sampling (``top_p`` after
    ``temperature``, no top-k cut; the same ``seed`` gives the same captions), or
    beam search. Beam search is transformers' standard one: a beam that emits EOS
    leaves the beam as a finished hypothesis scored sum log p / (new tokens, EOS
    included) ** ``length_penalty``; a sample is done once it holds ``num_beams``
    finished hypotheses and its best running beam, scored at the current length,
    cannot beat the worst of them (transformers' ``early_stopping=False``).
    fcap's own beam search before issue 14 kept a finished beam in the beam,
    padding at no cost, until every beam had ended: its captions can differ.
    """

    strategy: Literal["greedy", "nucleus", "beam"] = "greedy"  # paper: greedy ("no beam search")
    max_new_tokens: int = 30  # tokens after BOS, EOS included; pseudolabels average 10 words
    top_p: float = 0.9  # nucleus mass; BLIP pseudolabels: 0.9
    temperature: float = 1.0  # nucleus softmax temperature
    num_beams: int = 4  # beam search width
    length_penalty: float = 1.0  # beam: final score = sum log p / new tokens ** length_penalty
    seed: int = 0  # nucleus: same seed, same captions

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p: must be in (0, 1], got {self.top_p}")
        if self.temperature <= 0.0:
            raise ValueError(f"temperature: must be > 0, got {self.temperature}")
        if self.num_beams < 1:
            raise ValueError(f"num_beams: must be >= 1, got {self.num_beams}")
