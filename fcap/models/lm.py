"""Frozen decoder LMs (role ``"lm"``); the built-in family is OPT (paper: OPT-1.3B).

An LM family is a small, explicit hook (see fcap/models/README.md): it loads the
model + tokenizer and exposes the decoder in pieces, so FrozenCaptioner can run
the layers itself: lower layers without autograd, adapters in front of chosen
layers, visual memory passed as an argument, a text KV cache for generation.
A plugin adds GPT-2 or Llama by registering a class with the same members.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

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
    """``OPTForCausalLM`` + tokenizer, exposed as embed -> layers -> head."""

    role = "lm"
    family = "opt"

    def __init__(self, cfg: OPTSource) -> None:
        super().__init__()
        from transformers import AutoTokenizer, OPTForCausalLM

        path = sources.resolve_source(cfg.source, key="model.lm.source", tiny_options=cfg.tiny,
                                      build_tiny=build_tiny_opt)
        self.source = cfg.source
        with sources.quiet_loading():
            self.model = OPTForCausalLM.from_pretrained(
                path, attn_implementation=cfg.attn_implementation, dtype=torch.float32)
            self.tokenizer = AutoTokenizer.from_pretrained(path)
        self._identity = sources.identity(self.family, cfg.source, self.model)
        decoder = self.model.model.decoder
        self.bos_token_id = self.tokenizer.bos_token_id
        self.eos_token_id = self.tokenizer.eos_token_id
        self.pad_token_id = self.tokenizer.pad_token_id
        if None in (self.bos_token_id, self.eos_token_id, self.pad_token_id):
            raise ValueError(f"model.lm.source {cfg.source!r}: tokenizer lacks a bos/eos/pad token")
        self.hidden_size = decoder.config.hidden_size
        self.max_positions = decoder.config.max_position_embeddings
        # transformers 5.24 renamed the KV-cache keyword ``past_key_values`` -> ``cache``
        # (the old name is deprecated until 5.40): ask each function which one it takes.
        from transformers.masking_utils import create_causal_mask

        self._mask_cache_kw = _cache_keyword(create_causal_mask)
        self._layer_cache_kw = _cache_keyword(type(decoder.layers[0]).forward)

    # -- the pieces FrozenCaptioner runs ---------------------------------------------
    @property
    def layers(self) -> nn.ModuleList:
        """The decoder layers; FrozenCaptioner replaces chosen entries with AdaptedLayer."""
        return self.model.model.decoder.layers

    def identity(self) -> dict[str, str]:
        """Family, source and config/weights hashes (recorded in adapter manifests)."""
        return dict(self._identity)

    def new_cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
              cache: Any = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Token + position embeddings and the keyword arguments every layer needs.

        input_ids: (b, n) new tokens; attention_mask: (b, past + n) or None (no padding).
        Mirrors ``OPTDecoder.forward`` so outputs equal the plain LM's exactly.
        """
        from transformers.masking_utils import create_causal_mask

        decoder = self.model.model.decoder
        inputs_embeds = decoder.embed_tokens(input_ids)
        past = cache.get_seq_length() if cache is not None else 0
        position_mask = attention_mask
        if position_mask is None:
            position_mask = torch.ones(input_ids.shape[0], past + input_ids.shape[1],
                                       device=input_ids.device)
        position_ids = torch.cumsum(position_mask, dim=1)
        position_ids = (position_ids * position_mask - 1).long()[:, past:]
        causal_mask = create_causal_mask(config=decoder.config, inputs_embeds=inputs_embeds,
                                         attention_mask=attention_mask,
                                         **{self._mask_cache_kw: cache})
        pos_embeds = decoder.embed_positions(position_mask, past, position_ids=position_ids)
        if decoder.project_in is not None:
            inputs_embeds = decoder.project_in(inputs_embeds)
        hidden = inputs_embeds + pos_embeds.to(inputs_embeds.device)
        kwargs = {"attention_mask": causal_mask, "position_ids": position_ids,
                  self._layer_cache_kw: cache, "use_cache": cache is not None}
        return hidden, kwargs

    def run_layer(self, layer: nn.Module, hidden: torch.Tensor, kwargs: dict[str, Any],
                  **extra: Any) -> torch.Tensor:
        """One decoder layer (OPT layers return a tensor in transformers 5.x)."""
        out = layer(hidden, **kwargs, **extra)
        return out[0] if isinstance(out, tuple) else out

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm, projection and LM head: (b, n, hidden) -> logits (b, n, vocab)."""
        decoder = self.model.model.decoder
        if decoder.final_layer_norm is not None:
            hidden = decoder.final_layer_norm(hidden)
        if decoder.project_out is not None:
            hidden = decoder.project_out(hidden)
        return self.model.lm_head(hidden)

    @staticmethod
    def reorder_cache(cache: Any, index: torch.Tensor) -> None:
        """Keep batch rows ``index`` of the text KV cache (beam search)."""
        cache.reorder_cache(index)


def _cache_keyword(fn: Callable) -> str:
    """``"cache"`` (transformers >= 5.24) or ``"past_key_values"`` (5.4 - 5.23)."""
    params = inspect.signature(fn).parameters
    if "cache" in params:
        return "cache"
    if "past_key_values" in params:
        return "past_key_values"
    raise TypeError(f"{fn.__qualname__} takes neither 'cache' nor 'past_key_values': this "
                    "transformers is not one fcap supports (fcap.models.TRANSFORMERS_REQUIREMENT)")
