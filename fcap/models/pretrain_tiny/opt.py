"""Tiny OPT pretrained as a causal LM on caption-style English (the analogue of OPT's web text).

The corpus (:mod:`.corpus`) never holds a reference sentence of the shapes
world; its byte-level BPE tokenizer is trained on the same corpus, so the
world's words are whole tokens. Quality: per-token perplexity on held-out
corpus sentences, and on the world's references (which the LM never read).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fcap.models.pretrain_tiny import common, corpus
from fcap.models.tiny import TinyOPT, build_tokenizer, opt_config


@dataclass(frozen=True)
class OPTRecipe:
    """How the tiny OPT is pretrained (part of its cache key)."""

    sentences: int = 20000  # distinct corpus sentences drawn from the grammar
    heldout: int = 1000  # of them, kept out of training for the perplexity
    steps: int = 600  # AdamW steps (800 gave held-out perplexity 3.81, 600 3.84, 200 4.74)
    batch_size: int = 64  # sentences per step
    lr: float = 3e-3  # peak; linear warmup, cosine to 10%
    warmup: int = 40
    weight_decay: float = 0.01
    seed: int = 0  # corpus draw, init and batch order

    def __post_init__(self) -> None:
        if not 0 < self.heldout < self.sentences:
            raise ValueError(f"heldout: must be in (0, sentences={self.sentences}), "
                             f"got {self.heldout}")
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class PretrainedOPT:
    """``lm: {source: tiny-pretrained, tiny: DIMS}``: the dims and the recipe."""

    dims: TinyOPT = field(default_factory=TinyOPT)
    recipe: OPTRecipe = field(default_factory=OPTRecipe)


def _encode(tokenizer, lines: list[str]) -> list[list[int]]:
    """``BOS text EOS`` token ids (FrozenCaptioner's layout: OPT's ``</s>`` is both)."""
    return [ids + [tokenizer.eos_token_id] for ids in tokenizer(lines)["input_ids"]]


def _batch(tokenizer, ids: list[list[int]]) -> dict[str, torch.Tensor]:
    """Right-padded ids; labels -100 on padding."""
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": mask,
            "labels": input_ids.masked_fill(mask == 0, -100)}


@torch.no_grad()
def perplexity(model, tokenizer, lines: list[str], *, batch_size: int = 256) -> float:
    """exp(mean next-token NLL) over every target token of ``lines`` (EOS included)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(lines), batch_size):
        batch = _batch(tokenizer, _encode(tokenizer, lines[i:i + batch_size]))
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        targets = batch["labels"][:, 1:]
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(),
                                                targets.flatten(), ignore_index=-100,
                                                reduction="sum")
        total += float(nll)
        count += int((targets != -100).sum())
    return math.exp(total / count)


def build(out: Path, spec: PretrainedOPT) -> None:
    """Pretrain, save (model + tokenizer, transformers format) and write ``quality.json``."""
    from transformers import AutoTokenizer, OPTForCausalLM

    recipe, timer = spec.recipe, common.Timer()
    with common.building(recipe.seed):
        lines = corpus.sentences(recipe.sentences, seed=recipe.seed)
        train, heldout = lines[recipe.heldout:], lines[:recipe.heldout]
        tokenizer = build_tokenizer(spec.dims.vocab_size, train)
        model = OPTForCausalLM(opt_config(spec.dims, len(tokenizer)))
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        ids = _encode(tokenizer, train)
        order = torch.randperm(len(train))
        model.train()
        with common.progress(recipe.steps, "tiny OPT: causal LM on captions") as bar:
            for step in range(recipe.steps):
                pick = [(step * recipe.batch_size + k) % len(train) for k in range(recipe.batch_size)]
                batch = _batch(tokenizer, [ids[int(order[i])] for i in pick])
                loss = model(**batch).loss
                common.train_step(opt, loss, step=step, recipe=recipe, bar=bar)
        model.eval()
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    # quality through the saved folder: what every later stage loads
    loaded = OPTForCausalLM.from_pretrained(out, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(out)
    refs = sorted(corpus.references())
    common.write_quality(out, {
        "model": "tiny OPT (causal LM on a caption corpus)",
        "heldout_perplexity": round(perplexity(loaded, tok, heldout), 3),
        "reference_perplexity": round(perplexity(loaded, tok, refs), 3),
        "uniform_perplexity": len(tok),  # what a model knowing nothing scores
        "heldout_sentences": len(heldout), "reference_sentences": len(refs),
        "train_sentences": len(train), "steps": recipe.steps, **timer.seconds()})
