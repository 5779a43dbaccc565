"""Caption decoding: greedy (the paper's choice, no beam search), nucleus, beam.

Our own loop over the LM with its text KV cache, so the visual side is under
control: each adapter's visual keys/values (or Perceiver latents) are computed
once per sample and reused for every generated token and every beam.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

import torch

from fcap.models.attention.base import select_memory

if TYPE_CHECKING:
    from fcap.models.captioner import FrozenCaptioner


@dataclass(frozen=True)
class DecodingConfig:
    strategy: Literal["greedy", "nucleus", "beam"] = "greedy"  # paper: greedy ("no beam search")
    max_new_tokens: int = 30  # tokens after BOS, EOS included; pseudolabels average 10 words
    top_p: float = 0.9  # nucleus mass; BLIP pseudolabels: 0.9
    temperature: float = 1.0  # nucleus softmax temperature
    num_beams: int = 4  # beam search width
    length_penalty: float = 1.0  # beam: final score = sum log p / length ** length_penalty
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


def generate(model: "FrozenCaptioner", feats: torch.Tensor, frame_mask: torch.Tensor | None,
             cfg: DecodingConfig, *, reuse_visual: bool = True) -> torch.Tensor:
    """Token ids (b, n <= max_new_tokens) after BOS; rows end with EOS then pad."""
    lm = model.lm
    if cfg.max_new_tokens + 1 > lm.max_positions:
        raise ValueError(f"max_new_tokens: {cfg.max_new_tokens} + BOS exceeds the LM's "
                         f"{lm.max_positions} positions")
    b = feats.shape[0]
    width = cfg.num_beams if cfg.strategy == "beam" else 1
    rows = torch.arange(b, device=feats.device).repeat_interleave(width)
    if reuse_visual:
        fixed = select_memory(model.visual_memories(feats, frame_mask), rows)
        memories: Callable[[], Any] = lambda: fixed
    else:  # recompute the video side at every step (what reuse saves)
        feats_r = feats.index_select(0, rows)
        mask_r = None if frame_mask is None else frame_mask.index_select(0, rows)
        memories = lambda: model.visual_memories(feats_r, mask_r)
    cache = lm.new_cache()
    bos = torch.full((b * width, 1), lm.bos_token_id, dtype=torch.long, device=feats.device)
    step = lambda tokens: model.run_lm(tokens, None, memories(), cache)[:, -1].float()
    if cfg.strategy == "beam":
        return _beam(step, lm, cache, bos, b, cfg)
    return _sample(step, lm, bos, cfg)


def _sample(step, lm, bos: torch.Tensor, cfg: DecodingConfig) -> torch.Tensor:
    """Greedy or nucleus (top-p) decoding; finished rows emit pad."""
    generator = None
    if cfg.strategy == "nucleus":
        generator = torch.Generator(device=bos.device).manual_seed(cfg.seed)
    done = torch.zeros(bos.shape[0], dtype=torch.bool, device=bos.device)
    out = []
    logits = step(bos)
    for _ in range(cfg.max_new_tokens):
        if generator is None:
            token = logits.argmax(dim=-1)
        else:
            token = _nucleus(logits, cfg.top_p, cfg.temperature, generator)
        token = token.masked_fill(done, lm.pad_token_id)
        out.append(token)
        done |= token == lm.eos_token_id
        if bool(done.all()):
            break
        logits = step(token[:, None])
    return torch.stack(out, dim=1)


def _nucleus(logits: torch.Tensor, top_p: float, temperature: float,
             generator: torch.Generator) -> torch.Tensor:
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    keep = (sorted_p.cumsum(dim=-1) - sorted_p) < top_p  # smallest set with mass >= top_p
    sorted_p = sorted_p * keep
    pick = torch.multinomial(sorted_p / sorted_p.sum(dim=-1, keepdim=True), 1, generator=generator)
    return order.gather(-1, pick).squeeze(-1)


def _beam(step, lm, cache, bos: torch.Tensor, b: int, cfg: DecodingConfig) -> torch.Tensor:
    """Beam search; a finished beam continues only with pad at no cost."""
    k, device = cfg.num_beams, bos.device
    scores = torch.zeros(b, k, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: expand from the first only
    done = torch.zeros(b * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(b * k, device=device)
    seqs = bos.new_empty(b * k, 0)
    logits = step(bos)
    base = torch.arange(b, device=device)[:, None] * k
    for _ in range(cfg.max_new_tokens):
        logp = torch.log_softmax(logits, dim=-1)
        vocab = logp.shape[-1]
        logp[done] = float("-inf")
        logp[done, lm.pad_token_id] = 0.0
        top, idx = (scores.view(-1, 1) + logp).view(b, k * vocab).topk(k, dim=1)
        src = (base + idx // vocab).view(-1)
        token = (idx % vocab).view(-1)
        lengths = lengths[src] + (~done[src]).float()
        done = done[src] | (token == lm.eos_token_id)
        seqs = torch.cat([seqs[src], token[:, None]], dim=1)
        scores = top
        lm.reorder_cache(cache, src)
        if bool(done.all()):
            break
        logits = step(token[:, None])
    final = scores.view(-1) / lengths.clamp(min=1.0) ** cfg.length_penalty
    best = final.view(b, k).argmax(dim=1) + base.view(-1)
    return seqs[best]
