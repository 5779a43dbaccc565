"""Frozen decoder LMs (role ``"lm"``); the built-in family is OPT (paper: OPT-1.3B).

An LM family is a small, explicit hook (see fcap/models/README.md): it loads a
transformers causal LM + tokenizer whose ``forward`` accepts ``visual_memory=``
and hands it, with transformers' own decoder loop, to every decoder layer.
FrozenCaptioner replaces chosen entries of :attr:`layers` with
:class:`fcap.models.adapter.AdaptedLayer`, which takes its part of that memory;
teacher forcing and ``generate()`` (greedy, nucleus, beam; text KV cache) are
the stock transformers code paths. A plugin adds GPT-2 or Llama the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import torch
from torch import nn

from fcap.models import sources
from fcap.models.tiny import TinyOPT, build_tiny_opt
from registry import MODELS


@dataclass(frozen=True)
class OPTSource:
    # hub id, local HF directory, or "tiny" (random model built from `tiny`); paper: facebook/opt-1.3b
    source: str = "facebook/opt-1.3b"
    tiny: TinyOPT = field(default_factory=TinyOPT)
    # transformers attention kernel for the frozen self-attention: sdpa | eager
    attn_implementation: str = "sdpa"

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError("source: give a hub id, a local directory or 'tiny'")
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation: {self.attn_implementation!r} not allowed; "
                             "allowed: sdpa, eager")


@MODELS.register("opt", config=OPTSource)
class OPTLanguageModel(nn.Module):
    """:class:`fcap.models.opt_causal_lm.VisualOPTForCausalLM` + tokenizer."""

    role = "lm"
    family = "opt"

    def __init__(self, cfg: OPTSource) -> None:
        super().__init__()
        from transformers import AutoTokenizer, GenerationConfig

        from fcap.models.opt_causal_lm import VisualOPTForCausalLM  # imports transformers' OPT

        path = sources.resolve_source(cfg.source, key="model.lm.source", tiny_options=cfg.tiny,
                                      build_tiny=build_tiny_opt)
        self.source = cfg.source
        with sources.loading("model.lm.source", cfg.source):
            self.model = VisualOPTForCausalLM.from_pretrained(
                path, attn_implementation=cfg.attn_implementation, dtype=torch.float32)
            self.tokenizer = AutoTokenizer.from_pretrained(path)
        self._identity = sources.identity(self.family, cfg.source, self.model)
        self.bos_token_id = self.tokenizer.bos_token_id
        self.eos_token_id = self.tokenizer.eos_token_id
        self.pad_token_id = self.tokenizer.pad_token_id
        if None in (self.bos_token_id, self.eos_token_id, self.pad_token_id):
            raise ValueError(f"model.lm.source {cfg.source!r}: tokenizer lacks a bos/eos/pad token")
        # Decoding is fcap's DecodingConfig alone: a checkpoint's generation_config.json
        # (repetition penalties, forced tokens, ...) must not fill in what it leaves unset.
        self.model.generation_config = GenerationConfig(
            bos_token_id=self.bos_token_id, eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id)
        self.hidden_size = self.model.config.hidden_size
        self.max_positions = self.model.config.max_position_embeddings

    @property
    def layers(self) -> nn.ModuleList:
        """The decoder layers; FrozenCaptioner replaces chosen entries with AdaptedLayer."""
        return self.model.model.decoder.layers

    def identity(self) -> dict[str, str]:
        """Family, source and config/weights hashes (recorded in adapter manifests)."""
        return dict(self._identity)
