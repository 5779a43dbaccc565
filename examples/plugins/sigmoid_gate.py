"""An example fcap plugin: a per-dimension *sigmoid* gate for the adapters.

fcap's own gates multiply a residual branch by tanh(g) (``scalar``, ``vector``).
This plugin adds ``sigmoid``: the branch is multiplied by sigmoid(g) - bias, a
gate that can only damp, never flip, the branch. Nothing in fcap is edited:

    fcap-run examples/plugins/sigmoid_gate.yaml --profile tiny
    fcap-run experiments/table1.yaml --plugin examples/plugins/sigmoid_gate.py \
        model.adapters.gate.name=sigmoid

The GATES contract (see ``registry/__init__.py``): an ``nn.Module`` built as
``cls(cfg, *, dim)`` whose ``forward(x)`` returns ``x`` times the gate's value
and whose ``value()`` returns that value (fcap logs its mean absolute value).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from registry import GATES


@dataclass(frozen=True)
class SigmoidGateConfig:
    init: float = 0.0  # pre-sigmoid value g0; the gate starts at sigmoid(g0) - bias
    bias: float = 0.5  # subtracted so that init 0.0 starts the adapter as the identity

    def __post_init__(self) -> None:
        if not math.isfinite(self.init):
            raise ValueError(f"init must be finite, got {self.init}")
        if not 0.0 <= self.bias < 1.0:
            raise ValueError(f"bias must be in [0, 1), got {self.bias}")


@GATES.register("sigmoid", config=SigmoidGateConfig)
class SigmoidGate(nn.Module):
    """Per-dimension gate sigmoid(g) - bias (an example plugin)."""

    def __init__(self, cfg: SigmoidGateConfig, *, dim: int) -> None:
        super().__init__()
        self.bias = cfg.bias
        self.g = nn.Parameter(torch.full((dim,), float(cfg.init)))

    def value(self) -> torch.Tensor:
        return torch.sigmoid(self.g) - self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.value().to(x.dtype)
