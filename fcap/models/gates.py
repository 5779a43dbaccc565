"""Tanh gates on an adapter's residual branches (Sec. 4, Sec. 6).

``x + gate(branch(x))`` with ``gate(y) = tanh(g) * y``. ``init`` is the pre-tanh
value: 0.0 makes the adapter start as the identity (Flamingo); the paper finds
1.0 (tanh(1) ~ 0.76) much better for non-pretrained models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from registry import GATES


@dataclass(frozen=True)
class GateConfig:
    # pre-tanh initial value g0 (gate starts at tanh(g0)); Flamingo: 0.0, paper: 1.0
    init: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.init):
            raise ValueError(f"init: must be a finite number, got {self.init}")


class _TanhGate(nn.Module):
    def __init__(self, cfg: GateConfig, *, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.g = nn.Parameter(torch.full(shape, float(cfg.init)))

    def value(self) -> torch.Tensor:
        """tanh(g), broadcastable to ``(dim,)``."""
        return torch.tanh(self.g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., dim) -> x * tanh(g)."""
        return x * self.value().to(x.dtype)


@GATES.register("scalar", config=GateConfig)
class ScalarGate(_TanhGate):
    """One gate value per residual branch (Flamingo); diverges at lr > 1e-3 (Sec. 6)."""

    def __init__(self, cfg: GateConfig, *, dim: int) -> None:
        super().__init__(cfg, shape=(1,))


@GATES.register("vector", config=GateConfig)
class VectorGate(_TanhGate):
    """One gate value per hidden dimension (paper); trains at lr 7e-3 (Sec. 6)."""

    def __init__(self, cfg: GateConfig, *, dim: int) -> None:
        super().__init__(cfg, shape=(dim,))
