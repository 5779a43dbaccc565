"""``OPTIMIZERS``: torch optimizers for the adapter parameters.

DeepSpeed receives these as ready torch optimizers (never its own ``"Adam"``
config type, which JIT-builds fused_adam on first use).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from registry import OPTIMIZERS


def _check(*, lr: float, eps: float | None = None, betas=None, weight_decay: float = 0.0):
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if eps is not None and eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if betas is not None and not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must each be in [0, 1), got {list(betas)}")


@dataclass(frozen=True)
class AdamWConfig:
    lr: float = 1e-4  # paper: vector gates train at 7e-3, scalar gates diverge above 1e-3
    betas: tuple[float, float] = (0.9, 0.999)  # paper Sec. 6: beta2 0.95 is stabler, 0.999 generalises better
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check(lr=self.lr, eps=self.eps, betas=self.betas, weight_decay=self.weight_decay)


@dataclass(frozen=True)
class SGDConfig:
    lr: float = 1e-2
    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        _check(lr=self.lr, weight_decay=self.weight_decay)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov: true needs momentum > 0")


@OPTIMIZERS.register("adamw", config=AdamWConfig)
def adamw(cfg: AdamWConfig, params) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay); the paper's optimizer."""
    return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                             weight_decay=cfg.weight_decay, foreach=False)


@OPTIMIZERS.register("adam", config=AdamWConfig)
def adam(cfg: AdamWConfig, params) -> torch.optim.Optimizer:
    """Adam (L2 weight decay folded into the gradient)."""
    return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                            weight_decay=cfg.weight_decay, foreach=False)


@OPTIMIZERS.register("sgd", config=SGDConfig)
def sgd(cfg: SGDConfig, params) -> torch.optim.Optimizer:
    """SGD with optional (Nesterov) momentum."""
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay, nesterov=cfg.nesterov, foreach=False)
