"""``caption_eval``: caption a split with the model's decoding and score it (Sec. 5, Tables 1-2).

Writes ``predictions.json`` (id -> caption), ``references.json``, ``metrics.json``
(pycocoevalcap values) and ``summary.json`` into the run directory. The summary's
``skips`` counts, over all ranks, the items that could not be read and why: the
scores are over the rest, and report.md shows the count beside them. On the
shapes world (a ``truth/clips.jsonl`` beside the split's folder) the metrics also
include ``attributes``: colour / shape / direction / background accuracy against
that ground truth. ``eos_fraction``: captions that ended with EOS (the rest were
cut at ``decoding.max_new_tokens``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

from fcap.config import component, input_path
from fcap.data.shapes.truth import load_truth, truth_beside
from fcap.eval.captioning import generate_captions, skipped_items
from fcap.eval.scoring import ScoringConfig, score
from fcap.io import write_json_atomic
from fcap.models import DecodingConfig, ModelConfig, build_model
from fcap.tasks.adapters import upstream_adapters
from fcap.tasks.datasets import DatasetsConfig, data_env, loader_for
from fcap.train import distributed, rng
from fcap.train.config import DTYPES, Precision
from registry import DATA_SOURCES, TASKS


@dataclass(frozen=True, kw_only=True)
class CaptionEvalConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: Any = component(DATA_SOURCES, required=True)  # e.g. {name: msrvtt, split: test}
    datasets: DatasetsConfig = field(default_factory=DatasetsConfig)
    split: Optional[str] = None  # overrides the source's split; None: the source's own
    adapters: Optional[str] = input_path()  # None: <init_from run dir>/adapters, or untrained without init_from
    batch_size: int = 16  # items per generation batch per rank
    precision: Precision = "fp32"
    decoding: DecodingConfig = field(default_factory=DecodingConfig)  # paper: greedy
    scoring: ScoringConfig = field(default_factory=ScoringConfig)  # metrics and tokenizer
    max_items: Optional[int] = None  # cap on scored items; None: the whole split
    shuffle_videos: bool = False  # control: caption each item from another item's video
    shuffle_frames: bool = False  # control: permute each video's frames (motion needs their order)
    seed: Optional[int] = None  # None: the experiment's seed (untrained adapters, nucleus)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {self.max_items}")


@TASKS.register("caption_eval", config=CaptionEvalConfig,
                outputs={"metrics": "metrics.json", "predictions": "predictions.json",
                         "references": "references.json", "summary": "summary.json"})
def caption_eval(cfg: CaptionEvalConfig, ctx) -> dict:
    """Generate a caption per item of a split (batched, on every rank) and score them."""
    info = distributed.setup()
    try:
        return _evaluate(cfg, ctx, info)
    finally:
        distributed.teardown(info)


def _evaluate(cfg: CaptionEvalConfig, ctx, info) -> dict:
    seed = ctx.seed if cfg.seed is None else cfg.seed
    rng.seed_everything(seed)
    model = build_model(cfg.model)
    adapters = upstream_adapters(ctx, cfg.adapters, task="caption_eval", required=False)
    if adapters is not None:
        model.load_adapters(adapters)
    elif info.is_main:
        ctx.logger.warning("caption_eval: no init_from and no adapters: scoring UNTRAINED adapters")
    device = distributed.device(info)
    dtype = DTYPES[cfg.precision]
    model.to(device=device, dtype=dtype)
    env = data_env(cfg.datasets, seed=seed, info=info, logger=ctx.logger)
    loader = loader_for(cfg.data, datasets=cfg.datasets, env=env, spec=model.image_spec,
                        encoder=model.visual_identity(), train=False,
                        batch_size=cfg.batch_size, split=cfg.split)
    t0 = time.perf_counter()
    generated = generate_captions(model, loader, decoding=cfg.decoding, device=device, dtype=dtype,
                                  world_size=info.world_size, max_items=cfg.max_items,
                                  shuffle_videos=cfg.shuffle_videos,
                                  frames_shuffled=cfg.shuffle_frames, seed=seed)
    preds, refs = generated.predictions, generated.references
    gen_s = time.perf_counter() - t0
    # On the shapes world every evaluation is also scored per attribute against its truth
    truth, truth_path = world_truth(cfg.data, env)
    metrics_used = tuple(dict.fromkeys([*cfg.scoring.metrics, *(["attributes"] if truth else [])]))
    summary: dict = {"items": len(preds), "adapters": str(adapters) if adapters else None,
                     "decoding": cfg.decoding.strategy, "tokenizer": cfg.scoring.tokenizer,
                     "generation_s": gen_s, "shuffle_videos": cfg.shuffle_videos,
                     "shuffle_frames": cfg.shuffle_frames,
                     # the rest hit decoding.max_new_tokens: cut, maybe mid-word
                     "eos_fraction": generated.eos_fraction,
                     "truth": truth_path,  # ground truth of the attributes metric (None: references)
                     # all ranks' skips: the scores below are over the items that were read
                     "skips": skipped_items(env.skips, world_size=info.world_size)}
    if info.is_main:
        metrics = score(preds, refs, metrics=metrics_used, tokenizer=cfg.scoring.tokenizer,
                        truth=truth) if preds else {}
        write_json_atomic(ctx.run_dir / "predictions.json", dict(sorted(preds.items())))
        write_json_atomic(ctx.run_dir / "references.json", dict(sorted(refs.items())))
        write_json_atomic(ctx.run_dir / "metrics.json", metrics)
        summary["metrics"] = metrics
        write_json_atomic(ctx.run_dir / "summary.json", summary)
        ctx.logger.info("caption_eval %s: %s; ended with EOS: %.2f", ctx.stage,
                        " ".join(f"{k}={v:.4f}" for k, v in metrics.items()),
                        generated.eos_fraction)
    distributed.barrier(info)
    return summary


def world_truth(data, env) -> tuple[dict | None, str | None]:
    """The shapes world's ground truth of the split's layout, and its path.

    ``data``: the split's source (its ``root:`` folder, resolved like the reader
    resolves it, by ``env``). (None, None) when no truth lies beside that folder (a
    real dataset): the ``attributes`` metric then reads the attributes from the references.
    """
    folder = getattr(data.cfg, "root", None)
    found = truth_beside(env.resolve(folder)) if folder else None
    if found is None:
        return None, None
    return load_truth(found[0], found[1]), found[0]
