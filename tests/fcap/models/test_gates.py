"""GATES: tanh gates, scalar vs vector, and the plugin contract cls(cfg, *, dim)."""
import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from fcap.config.errors import ConfigError
from fcap.config.schema import build_component
from fcap.models.adapter import Adapter
from registry import CROSS_ATTENTIONS, GATES


@pytest.mark.parametrize("name,shape", [("scalar", (1,)), ("vector", (8,))])
def test_gate_values_and_shapes(name, shape):
    x = torch.randn(2, 5, 8)
    gate = build_component(GATES, {"name": name, "init": 1.0}).build(dim=8)
    assert tuple(gate.g.shape) == shape
    assert torch.allclose(gate.value(), torch.full(shape, math.tanh(1.0)))
    assert torch.allclose(gate(x), x * math.tanh(1.0))
    closed = build_component(GATES, {"name": name, "init": 0.0}).build(dim=8)
    assert torch.equal(closed(x), torch.zeros_like(x))


def test_vector_gate_has_one_value_per_dimension():
    gate = build_component(GATES, {"name": "vector"}).build(dim=4)
    with torch.no_grad():
        gate.g.copy_(torch.tensor([0.0, 1.0, -1.0, 2.0]))
    x = torch.ones(3, 4)
    assert torch.allclose(gate(x)[0], torch.tanh(torch.tensor([0.0, 1.0, -1.0, 2.0])))


def test_gate_init_must_be_finite():
    with pytest.raises(ConfigError, match="init: must be a finite number, got nan"):
        build_component(GATES, {"name": "scalar", "init": float("nan")})


@dataclass(frozen=True)
class SigmoidGateConfig:
    bias: float = 0.0


class SigmoidGate(nn.Module):
    """A plugin gate: sigmoid instead of tanh."""

    def __init__(self, cfg, *, dim):
        super().__init__()
        self.g = nn.Parameter(torch.full((dim,), cfg.bias))

    def value(self):
        return torch.sigmoid(self.g)

    def forward(self, x):
        return x * self.value()


def test_plugin_gate_builds_inside_an_adapter():
    GATES.register("test-sigmoid", config=SigmoidGateConfig)(SigmoidGate)
    gate = build_component(GATES, {"name": "test-sigmoid", "bias": 0.0})
    attention = build_component(CROSS_ATTENTIONS, {"name": "full", "heads": 2})
    adapter = Adapter(dim=8, visual_dim=6, attention=attention, gate=gate, ffn_mult=2)
    assert isinstance(adapter.gate_attn, SigmoidGate) and adapter.gate_attn.g.shape == (8,)
    x, v = torch.randn(2, 3, 8), torch.randn(2, 2, 5, 6)
    out = adapter(x, adapter.prepare(v, None))
    assert out.shape == x.shape and not torch.equal(out, x)


def test_unknown_gate_suggests_the_closest():
    with pytest.raises(ConfigError, match="no gate 'vectr' in registry 'gate'; did you mean 'vector'"):
        build_component(GATES, {"name": "vectr"})
