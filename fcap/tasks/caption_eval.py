"""``caption_eval``: caption a split with the model's decoding and score it (Sec. 5, Tables 1-2).

Writes ``predictions.json`` (id -> caption), ``references.json``, ``metrics.json``
(pycocoevalcap values) and ``summary.json`` into the run directory. The summary's
``skips`` counts, over all ranks, the items that could not be read and why: the
scores are over the rest, and report.md shows the count beside them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

from fcap.config import component
from fcap.eval.captioning import generate_captions, skipped_items
from fcap.eval.scoring import DEFAULT_METRICS, check_metric_names, score
from fcap.eval.tokenize import Tokenizer
from fcap.models import DecodingConfig, ModelConfig, build_model
from fcap.tasks import common
from fcap.train import distributed, rng
from registry import DATA_SOURCES, TASKS


@dataclass(frozen=True, kw_only=True)
class CaptionEvalConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: Any = component(DATA_SOURCES, required=True)  # e.g. {name: msrvtt, split: test}
    datasets: common.DatasetsConfig = field(default_factory=common.DatasetsConfig)
    split: Optional[str] = None  # overrides the source's split; None: the source's own
    adapters: Optional[str] = None  # None: <init_from run dir>/adapters, or untrained without init_from
    batch_size: int = 16  # items per generation batch per rank
    precision: common.Precision = "fp32"
    decoding: DecodingConfig = field(default_factory=DecodingConfig)  # paper: greedy
    metrics: tuple[str, ...] = DEFAULT_METRICS  # METRICS names; the paper reports CIDEr-D
    tokenizer: Tokenizer = "ptb"  # ptb: Java, as published; simple: no Java, not bit-identical
    max_items: Optional[int] = None  # cap on scored items; None: the whole split
    shuffle_videos: bool = False  # control: caption each item from another item's video
    seed: Optional[int] = None  # None: the experiment's seed (untrained adapters, nucleus)

    def __post_init__(self) -> None:
        check_metric_names(self.metrics)
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
    adapters = common.upstream_adapters(ctx, cfg.adapters, task="caption_eval", required=False)
    if adapters is not None:
        model.load_adapters(adapters)
    elif info.is_main:
        ctx.logger.warning("caption_eval: no init_from and no adapters: scoring UNTRAINED adapters")
    device = distributed.device(info)
    dtype = common.DTYPES[cfg.precision]
    model.to(device=device, dtype=dtype)
    env = common.data_env(cfg.datasets, seed=seed, info=info, logger=ctx.logger)
    loader = common.loader_for(cfg.data, datasets=cfg.datasets, env=env, spec=model.image_spec,
                               encoder=model.visual_identity(), train=False,
                               batch_size=cfg.batch_size, split=cfg.split)
    t0 = time.perf_counter()
    preds, refs = generate_captions(model, loader, decoding=cfg.decoding, device=device, dtype=dtype,
                                    world_size=info.world_size, max_items=cfg.max_items,
                                    shuffle_videos=cfg.shuffle_videos)
    gen_s = time.perf_counter() - t0
    summary: dict = {"items": len(preds), "adapters": str(adapters) if adapters else None,
                     "decoding": cfg.decoding.strategy, "tokenizer": cfg.tokenizer,
                     "generation_s": gen_s, "shuffle_videos": cfg.shuffle_videos,
                     # all ranks' skips: the scores below are over the items that were read
                     "skips": skipped_items(env.skips, world_size=info.world_size)}
    if info.is_main:
        metrics = score(preds, refs, metrics=cfg.metrics, tokenizer=cfg.tokenizer) if preds else {}
        common.write_json(ctx.run_dir / "predictions.json", dict(sorted(preds.items())))
        common.write_json(ctx.run_dir / "references.json", dict(sorted(refs.items())))
        common.write_json(ctx.run_dir / "metrics.json", metrics)
        summary["metrics"] = metrics
        common.write_json(ctx.run_dir / "summary.json", summary)
        ctx.logger.info("caption_eval %s: %s", ctx.stage,
                        " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    distributed.barrier(info)
    return summary
