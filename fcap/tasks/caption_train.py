"""``caption_pretrain`` and ``caption_finetune``: train the adapters (Sec. 5.2).

Both run the same trainer; fine-tuning starts from the adapters of the stage
named in ``init_from`` (``<ctx.init_from>/adapters``). The final adapters land
in ``<run_dir>/adapters/`` (safetensors + manifest) for later stages.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from fcap.config import component, input_path
from fcap.eval.captioning import generate_captions, roll_videos, skipped_items, visual_inputs
from fcap.eval.scoring import ScoringConfig, score
from fcap.io import write_json_atomic
from fcap.models import DecodingConfig, ModelConfig, build_model
from fcap.models.adapter import gate_shift_max, gate_values
from fcap.tasks.adapters import export_adapters, upstream_adapters
from fcap.tasks.datasets import DatasetsConfig, data_env, loader_for, skip_counts
from fcap.train import distributed, rng
from fcap.train.config import DTYPES, TrainConfig
from fcap.train.trainer import StepResult, Trainer, TrainHooks, TrainRun
from registry import DATA_SOURCES, OPTIMIZERS, SCHEDULERS, TASKS


@dataclass(frozen=True)
class ValidationScoringConfig(ScoringConfig):
    """``scoring:`` of a training stage's validation: CIDEr-D alone unless told otherwise."""

    metrics: tuple[str, ...] = ("cider",)  # scored every train.eval_every steps


@dataclass(frozen=True, kw_only=True)
class CaptionTrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: Any = component(DATA_SOURCES, required=True)  # the training stream (e.g. a mixture)
    val_data: Any = component(DATA_SOURCES)  # scored every train.eval_every steps; None: no validation
    datasets: DatasetsConfig = field(default_factory=DatasetsConfig)
    optimizer: Any = component(OPTIMIZERS, "adamw")
    scheduler: Any = component(SCHEDULERS, "constant")
    train: TrainConfig = field(default_factory=TrainConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)  # validation captions
    scoring: ValidationScoringConfig = field(default_factory=ValidationScoringConfig)
    val_max_items: Optional[int] = None  # cap on validation items; None: the whole split
    shuffle_videos: bool = False  # control run: each caption paired with another item's video

    def scores_captions(self) -> bool:
        """Whether the stage runs ``scoring:`` (the data preflight's Java check asks)."""
        return self.val_data is not None and self.train.eval_every > 0

    def __post_init__(self) -> None:
        if self.val_max_items is not None and self.val_max_items < 1:
            raise ValueError(f"val_max_items must be >= 1, got {self.val_max_items}")
        # refused when planned, not after a queued job has started: a warmup longer than
        # the stage would leave the learning rate below its value for the whole run
        warmup = getattr(self.scheduler.cfg, "warmup_steps", None) if self.scheduler else None
        if warmup is not None and warmup > self.train.total_steps:
            raise ValueError(  # "train" first: reported at this stage's train block
                f"train: the stage runs {self.train.total_steps} steps (steps "
                f"{self.train.steps} x step_scale {self.train.step_scale:g} x step_factor "
                f"{self.train.step_factor:g}), fewer than scheduler.warmup_steps={warmup}: "
                f"raise train.steps or lower scheduler.warmup_steps")


@dataclass(frozen=True, kw_only=True)
class PretrainConfig(CaptionTrainConfig):
    """Adapters from scratch on pseudolabelled / image-text data."""


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig(CaptionTrainConfig):
    # a stage of this task starts from trained adapters: the plan refuses one with neither
    # init_from nor adapters (fcap/experiment/stages.py), before anything runs or is queued
    NEEDS_ADAPTERS: ClassVar[bool] = True
    adapters: Optional[str] = input_path()  # start from here; None: <init_from run dir>/adapters


@TASKS.register("caption_pretrain", config=PretrainConfig,
                outputs={"adapters": "adapters", "summary": "summary.json"})
def caption_pretrain(cfg: PretrainConfig, ctx) -> dict:
    """Train adapters from their initialisation (a stage without init_from)."""
    init = upstream_adapters(ctx, None, task="caption_pretrain", required=False)
    return train_captioner(cfg, ctx, init_adapters=init)


@TASKS.register("caption_finetune", config=FinetuneConfig,
                outputs={"adapters": "adapters", "summary": "summary.json"})
def caption_finetune(cfg: FinetuneConfig, ctx) -> dict:
    """Continue training the adapters of an earlier stage (``init_from: pretrain``)."""
    init = upstream_adapters(ctx, cfg.adapters, task="caption_finetune", required=True)
    return train_captioner(cfg, ctx, init_adapters=init)


def train_captioner(cfg: CaptionTrainConfig, ctx, *, init_adapters=None) -> dict:
    info = distributed.setup()
    try:
        return _train(cfg, ctx, info, init_adapters)
    finally:
        distributed.teardown(info)


def _train(cfg: CaptionTrainConfig, ctx, info, init_adapters) -> dict:
    seed = ctx.seed if cfg.train.seed is None else cfg.train.seed
    rng.seed_everything(seed)  # the same adapter initialisation on every rank
    model = build_model(cfg.model)
    if init_adapters is not None:
        model.load_adapters(init_adapters)
        if info.is_main:
            ctx.logger.info("adapters from %s", init_adapters)
    device = distributed.device(info)
    dtype = DTYPES[cfg.train.precision]
    env = data_env(cfg.datasets, seed=seed, info=info, logger=ctx.logger)
    spec, encoder = model.image_spec, model.visual_identity()
    loader = loader_for(cfg.data, datasets=cfg.datasets, env=env, spec=spec, encoder=encoder,
                        train=True, batch_size=cfg.train.batch_size)
    max_len = cfg.train.max_text_length

    def loss_fn(engine, batch) -> StepResult:
        text = model.prepare_text(batch["captions"], max_len)
        vis = visual_inputs(batch, device=device, dtype=dtype)
        if cfg.shuffle_videos:
            vis = roll_videos(vis)
        out = engine(**{k: v.to(device) for k, v in text.items()}, **vis)
        return StepResult(loss=out.loss, samples=len(batch["ids"]),
                          tokens=int(text["attention_mask"].sum()), modality=batch["modality"])

    evaluate = None
    if cfg.val_data is not None:
        val_env = data_env(cfg.datasets, seed=seed, info=info, logger=ctx.logger)
        val_loader = loader_for(cfg.val_data, datasets=cfg.datasets, env=val_env, spec=spec,
                                encoder=encoder, train=False, batch_size=cfg.train.batch_size)

        def evaluate(step: int) -> dict[str, float]:
            return _validate(cfg, model, val_loader, info=info, device=device, dtype=dtype)

    hooks = TrainHooks(scalars=model.scalars, evaluate=evaluate,
                       counts=lambda: {f"data/{k}": v for k, v in skip_counts(env).items()})
    trainer = Trainer(cfg.train, model=model, loader=loader, loss_fn=loss_fn,
                      optimizer=cfg.optimizer, scheduler=cfg.scheduler,
                      run=TrainRun.of_stage(ctx, seed=seed, info=info), hooks=hooks)
    gates_before = gate_values(model.adapters())
    summary = trainer.fit()
    summary["gate_shift_max"] = gate_shift_max(gates_before, gate_values(model.adapters()))
    summary["task"] = ctx.stage
    summary["init_adapters"] = str(init_adapters) if init_adapters else None
    # every rank's unreadable items (a collective call): report.md shows them beside the scores
    summary["skips"] = skipped_items(env.skips, world_size=info.world_size)
    memory = loader.clip_memory()  # this rank's (datasets.clip_memory_mb)
    if memory is not None:
        summary["clip_memory"] = memory
        if info.is_main:
            ctx.logger.info("clips decoded %d, reused from memory %d (datasets.clip_memory_mb=%d)",
                            memory["decoded"], memory["reused"], cfg.datasets.clip_memory_mb)
    if info.is_main:
        summary["adapters"] = str(export_adapters(model, ctx.run_dir))
        write_json_atomic(ctx.run_dir / "summary.json", summary)
    distributed.barrier(info)
    return summary


def _validate(cfg: CaptionTrainConfig, model, loader, *, info, device, dtype) -> dict[str, float]:
    """Validation loss (first caption per item) and caption metrics on ``val_data``."""
    total, count = 0.0, 0
    cap = None if cfg.val_max_items is None else -(-cfg.val_max_items // info.world_size)
    for batch in loader:
        if cap is not None and count >= cap:
            break
        text = model.prepare_text(batch["captions"], cfg.train.max_text_length)
        out = model(**{k: v.to(device) for k, v in text.items()},
                    **visual_inputs(batch, device=device, dtype=dtype))
        total += float(out.loss) * len(batch["ids"])
        count += len(batch["ids"])
    total, count = distributed.all_reduce([total, float(count)], info=info)
    generated = generate_captions(model, loader, decoding=cfg.decoding, device=device,
                                  dtype=dtype, world_size=info.world_size,
                                  max_items=cfg.val_max_items)
    preds, refs = generated.predictions, generated.references
    result = {"loss": total / count if count else math.nan}
    if info.is_main and preds:
        result.update(score(preds, refs, metrics=cfg.scoring.metrics, tokenizer=cfg.scoring.tokenizer))
    return result
