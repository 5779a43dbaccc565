"""Caption decoding through transformers ``generate()``: greedy, nucleus, beam.

The adapters' visual memory (keys/values, pooled tokens or Perceiver latents) is
computed once per sample by the caller and passed to ``generate()`` as the
``visual_memory`` model input: ``generate()`` hands the same object to the LM at
every step, so the text side runs with transformers' KV cache and the video side
is never recomputed. For beam search the memory is expanded to one row per beam
here (``generate()`` only expands plain tensors); the beams of one sample share
one video, so reordering beams never needs to touch it.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from fcap.models.attention.base import select_memory
from fcap.models.config import DecodingConfig


def generation_config(cfg: DecodingConfig, *, bos: int, eos: int, pad: int) -> Any:
    """The ``transformers.GenerationConfig`` for ``cfg``; every option that matters is set."""
    from transformers import GenerationConfig

    options: dict[str, Any] = {"max_new_tokens": cfg.max_new_tokens, "min_new_tokens": 0,
                               "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad,
                               "use_cache": True, "num_beams": 1, "do_sample": False}
    if cfg.strategy == "nucleus":  # top_k 0: transformers' default would cut at 50 tokens
        options.update(do_sample=True, top_p=cfg.top_p, top_k=0, temperature=cfg.temperature)
    elif cfg.strategy == "beam" and cfg.num_beams > 1:
        options.update(num_beams=cfg.num_beams, length_penalty=cfg.length_penalty,
                       early_stopping=False)
    return GenerationConfig(**options)


def generate_ids(lm: Any, memory: Mapping[int, Any], cfg: DecodingConfig, *,
                 batch: int, device: torch.device) -> torch.Tensor:
    """New token ids (batch, n <= max_new_tokens) after BOS; rows end with EOS then pad.

    lm: an ``"lm"`` role module (``model`` takes ``visual_memory=``; token ids);
    memory: ``{layer index: adapter memory}`` with ``batch`` rows.
    """
    if cfg.max_new_tokens + 1 > lm.max_positions:
        raise ValueError(f"max_new_tokens: {cfg.max_new_tokens} + BOS exceeds the LM's "
                         f"{lm.max_positions} positions")
    gen = generation_config(cfg, bos=lm.bos_token_id, eos=lm.eos_token_id, pad=lm.pad_token_id)
    if gen.num_beams > 1:
        rows = torch.arange(batch, device=device).repeat_interleave(gen.num_beams)
        memory = select_memory(dict(memory), rows)
    bos = torch.full((batch, 1), lm.bos_token_id, dtype=torch.long, device=device)
    if not gen.do_sample:
        return lm.model.generate(bos, generation_config=gen, visual_memory=memory)[:, 1:]
    # sampling draws from torch's global generator: seed a copy and restore it after
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(cfg.seed)
        return lm.model.generate(bos, generation_config=gen, visual_memory=memory)[:, 1:]
