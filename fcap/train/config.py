"""The trainer's options: the ``train:`` block of every training stage."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch

from fcap.config.schema import run_option

# Numeric precision of a stage: of training (DeepSpeed's fp16 / bf16 modes, engine.py)
# and of evaluation (the dtype the model runs in).
Precision = Literal["fp32", "bf16", "fp16"]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainConfig:
    """Step-based training with a DeepSpeed engine (paper Sec. 5.2).

    One *step* is one optimizer update: ``grad_accum`` micro-batches of
    ``batch_size`` items on each of the world's ranks.
    """

    steps: int = 1000  # optimizer steps (paper: 4K for Table 1, 40K for Table 2)
    batch_size: int = 8  # items per micro-batch per rank (the data source may override per modality)
    grad_accum: int = 1  # micro-batches per step (paper: keeps the batch at 320px crops)
    clip_grad: float = 1.0  # global gradient-norm clip; 0 disables
    zero_stage: Literal[1, 2] = 2  # DeepSpeed ZeRO stage (paper: 2)
    precision: Precision = "fp32"  # paper: fp16 on V100s
    # run options (not in the config hash): a stage resumes from its checkpoint to the same
    # weights whatever they are, so changing one resumes the stage instead of restarting it
    log_every: int = run_option(10)  # steps between logged scalars
    eval_every: int = 0  # steps between evaluations on val_data; 0: never
    save_every: int = run_option(500)  # steps between checkpoints; 0: only at the end
    keep_last: int = run_option(2)  # checkpoints kept on disk (the newest ones)
    max_bad_steps: int = 10  # consecutive non-finite steps before the stage stops
    seed: Optional[int] = None  # None: the experiment's seed
    max_text_length: int = 32  # caption tokens fed to the LM (BOS/EOS included)
    debug_nan_steps: tuple[int, ...] = ()  # test hook: these steps get a NaN loss
    # multiplies `steps` (the tiny profile runs each experiment's schedule at a fraction,
    # keeping the ratios between its stages and variants, e.g. beta2's 10K vs 4K)
    step_scale: float = 1.0
    # multiplies `steps` again, for one task in a profile's `tasks:` block (the tiny
    # profile fine-tunes at 2x its scale). Kept apart from step_scale so that a
    # `train.step_scale` set later (a profile built on tiny, the command line) still
    # reaches every stage.
    step_factor: float = 1.0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "log_every", "keep_last",
                     "max_bad_steps", "max_text_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 disables), got {getattr(self, name)}")
        if self.clip_grad < 0:
            raise ValueError(f"clip_grad must be >= 0 (0 disables), got {self.clip_grad}")
        for name in ("step_scale", "step_factor"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        bad = [s for s in self.debug_nan_steps if s < 1]
        if bad:
            raise ValueError(f"debug_nan_steps must be step numbers >= 1, got {bad}")

    @property
    def total_steps(self) -> int:
        """Optimizer steps this stage runs: ``steps * step_scale * step_factor`` (at least 1)."""
        return max(1, round(self.steps * self.step_scale * self.step_factor))
