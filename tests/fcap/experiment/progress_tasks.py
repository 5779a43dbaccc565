"""Test plugin: a toy training stage that leaves TensorBoard logs, as the trainer does
(``<run_dir>/tensorboard/``). Loaded by path, not collected."""
from __future__ import annotations

from dataclasses import dataclass

from registry import TASKS


@dataclass(frozen=True)
class CurvesConfig:
    steps: int = 3  # scalars written


@TASKS.register("toy_curves", config=CurvesConfig)
def toy_curves(cfg, ctx):
    """Write ``steps`` loss values to ``<run_dir>/tensorboard/``."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(ctx.run_dir / "tensorboard")) as writer:
        for step in range(1, cfg.steps + 1):
            writer.add_scalar("train/loss", 1.0 / step, step)
    return {"steps": cfg.steps}
