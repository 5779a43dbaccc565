"""``SCHEDULERS``: learning-rate multipliers per optimizer step.

Each builds a ``LambdaLR`` whose factor depends only on the step number, so its
``state_dict`` (saved in every checkpoint) restores it exactly. DeepSpeed steps
it once per *applied* update (a skipped bad step does not advance it).

Why not transformers' ``get_{constant,cosine,linear}_schedule_with_warmup``
(checked against transformers 5.24): they would change the curves, which
``tests/fcap/train/test_schedulers.py`` pins. Their warmup is ``step / warmup``
(the first update at lr 0; ours ``(step + 1) / warmup``), their cosine rises
again after ``total_steps`` where ours holds the final value, and the linear
one has no ``min_lr_ratio``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from torch.optim.lr_scheduler import LambdaLR

from registry import SCHEDULERS


@dataclass(frozen=True)
class WarmupConfig:
    warmup_steps: int = 0  # linear ramp from 0 to the optimizer's lr
    min_lr_ratio: float = 0.0  # final lr as a fraction of the peak

    def __post_init__(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


@dataclass(frozen=True)
class ConstantConfig:
    warmup_steps: int = 0  # linear ramp from 0, then constant

    def __post_init__(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")


def _warmup(step: int, warmup: int) -> float | None:
    if warmup and step < warmup:
        return (step + 1) / warmup
    return None


@SCHEDULERS.register("constant", config=ConstantConfig)
def constant(cfg: ConstantConfig, optimizer, *, total_steps: int) -> LambdaLR:
    """Constant lr after an optional linear warmup."""
    def factor(step: int) -> float:
        w = _warmup(step, cfg.warmup_steps)
        return 1.0 if w is None else w
    return LambdaLR(optimizer, factor)


def _warmup_then(cfg: WarmupConfig, optimizer, total_steps: int, decay) -> LambdaLR:
    """Linear warmup, then ``decay(progress in [0, 1])`` scaled to end at ``min_lr_ratio``."""
    _check_total(cfg, total_steps)

    def factor(step: int) -> float:
        w = _warmup(step, cfg.warmup_steps)
        if w is not None:
            return w
        span = max(1, total_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * decay(progress)
    return LambdaLR(optimizer, factor)


@SCHEDULERS.register("warmup_cosine", config=WarmupConfig)
def warmup_cosine(cfg: WarmupConfig, optimizer, *, total_steps: int) -> LambdaLR:
    """Linear warmup, then half a cosine down to ``min_lr_ratio`` at ``total_steps``."""
    return _warmup_then(cfg, optimizer, total_steps, lambda p: 0.5 * (1 + math.cos(math.pi * p)))


@SCHEDULERS.register("warmup_linear", config=WarmupConfig)
def warmup_linear(cfg: WarmupConfig, optimizer, *, total_steps: int) -> LambdaLR:
    """Linear warmup, then a straight line down to ``min_lr_ratio`` at ``total_steps``."""
    return _warmup_then(cfg, optimizer, total_steps, lambda p: 1.0 - p)


def _check_total(cfg: WarmupConfig, total_steps: int) -> None:
    if cfg.warmup_steps > total_steps:
        raise ValueError(f"scheduler warmup_steps={cfg.warmup_steps} exceeds the stage's "
                         f"steps={total_steps}")
