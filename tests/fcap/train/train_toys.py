"""A toy model and a resumable toy loader: the trainer's contracts at their smallest."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from fcap.config import build_component
from fcap.train.config import TrainConfig
from fcap.train.trainer import StepResult, Trainer, TrainHooks, TrainRun
from registry import OPTIMIZERS, SCHEDULERS


class ToyModel(nn.Module):
    """A frozen random projection and a small trainable head (the 'adapter')."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.frozen = nn.Linear(8, 16)
        self.frozen.requires_grad_(False)
        self.adapter = nn.Sequential(nn.Linear(16, 16), nn.Dropout(0.1), nn.Linear(16, 1))

    def trainable_parameters(self):
        return list(self.adapter.parameters())

    def forward(self, x, y, poison=False):
        out = self.adapter(torch.tanh(self.frozen(x.to(self.frozen.weight.dtype)))).float()
        if poison:  # a finite loss whose gradients are not
            out.register_hook(lambda g: g * float("inf"))
        return nn.functional.mse_loss(out.squeeze(-1), y)


class ToyLoader:
    """An endless stream of (x, y) batches whose position is its state."""

    def __init__(self, *, rank: int = 0, batch_size: int = 4, on_batch=None, poison=()) -> None:
        self.rank, self.batch_size, self.position = rank, batch_size, 0
        self.poison = poison  # batch positions whose gradients become non-finite
        self.on_batch = on_batch  # called with the position of each batch handed out

    def __iter__(self):
        while True:
            g = torch.Generator().manual_seed(1000 * self.rank + self.position)
            self.position += 1
            if self.on_batch is not None:
                self.on_batch(self.position)
            x = torch.randn(self.batch_size, 8, generator=g)
            yield {"x": x, "y": x[:, 0] * 2 - x[:, 1], "poison": self.position in self.poison,
                   "modality": "video" if self.position % 3 else "image"}

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state):
        self.position = state["position"]


def toy_loss(engine, batch) -> StepResult:
    loss = engine(batch["x"], batch["y"], poison=batch["poison"])
    n = len(batch["y"])
    return StepResult(loss=loss, samples=n, tokens=n * 3, modality=batch["modality"])


def make_trainer(run_dir: Path, info, *, stop_after=None, config_hash="toy", on_batch=None,
                 poison=(), hooks=None, **train) -> Trainer:
    """``hooks``: default, a ``gates/layer0/attn`` scalar from the toy adapter."""
    cfg = TrainConfig(**{"steps": 12, "batch_size": 4, "log_every": 2, "save_every": 4, **train})
    model = ToyModel()
    return Trainer(cfg, model=model, loader=ToyLoader(rank=info.rank, batch_size=cfg.batch_size, on_batch=on_batch,
                                                        poison=poison),
                   loss_fn=toy_loss, optimizer=build_component(OPTIMIZERS, {"name": "adamw", "lr": 1e-2}),
                   scheduler=build_component(SCHEDULERS, {"name": "warmup_cosine", "warmup_steps": 2}),
                   run=TrainRun(run_dir=run_dir, config_hash=config_hash, seed=0, info=info,
                                logger=logging.getLogger("toy"), stop_after=stop_after),
                   hooks=hooks or TrainHooks(scalars=lambda: {
                       "gates/layer0/attn": model.adapter[0].weight.abs().mean().item()}))


def adapter_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.engine.module.adapter.state_dict().items()}
