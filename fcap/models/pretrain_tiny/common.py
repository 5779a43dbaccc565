"""What every tiny pretraining recipe shares: seeding, threads, progress bars, quality.json."""
from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from fcap.io import write_json_atomic

QUALITY = "quality.json"  # in each pretrained model's cache folder
BUILD_THREADS = 1  # torch intra-op threads while building: same weights on every machine
BAR_POSITION = 0  # the terminal line of this process's progress bars (build_all's workers)
log = logging.getLogger("fcap.models.pretrain_tiny")


@contextmanager
def building(seed: int) -> Iterator[None]:
    """Seeded, single-threaded torch for one build; the caller's RNG and threads come back after.

    One thread makes the floating-point reduction order, hence the weights,
    the same on every machine with the same torch build; on 2 busy cores it is
    also no slower for models this small (bench/README.md).
    """
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(BUILD_THREADS)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def progress(total: int, desc: str):
    """A tqdm bar on stderr (shown on a terminal, silent in logs and tests)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, disable=None, mininterval=0.5,
                position=BAR_POSITION)


class Timer:
    """Wall and CPU seconds since creation (CPU time is what a busy shared machine can't inflate)."""

    def __init__(self) -> None:
        self.start, self.cpu = time.perf_counter(), time.process_time()

    def seconds(self) -> dict[str, float]:
        return {"build_seconds": round(time.perf_counter() - self.start, 2),
                "build_cpu_seconds": round(time.process_time() - self.cpu, 2)}


def write_quality(out: Path, quality: dict[str, Any]) -> None:
    """``quality.json``: what the recipe reached on held-out data, and what it cost."""
    write_json_atomic(Path(out) / QUALITY, {**quality, "threads": BUILD_THREADS,
                                           "torch": torch.__version__})


def read_quality(folder: str | Path) -> dict[str, Any] | None:
    """A pretrained model folder's ``quality.json``; None for a folder without one."""
    try:
        return json.loads((Path(folder) / QUALITY).read_text())
    except (OSError, ValueError):
        return None


def lr_at(step: int, total: int, lr: float, warmup: int) -> float:
    """Linear warmup then cosine decay to 10% (all recipes)."""
    import math

    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, *, step: int, recipe: Any,
               bar) -> None:
    """One optimiser step at the recipe's warmup-then-decay learning rate, shown on ``bar``."""
    set_lr(optimizer, lr_at(step, recipe.steps, recipe.lr, recipe.warmup))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    bar.update(1)
    bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
