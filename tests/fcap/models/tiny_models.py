"""Builders of tiny FrozenCaptioners shared by the model tests (imported by conftest)."""
from __future__ import annotations

import torch

import fcap.models  # noqa: F401  (registers components)
from fcap.config.schema import from_dict
from fcap.models import ModelConfig, build_model


def tiny_config(*, attention="separable", gate="vector", init=1.0, layers=(1, 3), lm_seed=0,
                **attention_options) -> ModelConfig:
    return from_dict(ModelConfig, {
        "lm": {"name": "opt", "source": "tiny", "tiny": {"seed": lm_seed}},
        "visual": {"name": "timesformer", "source": "tiny"},
        "adapters": {"layers": list(layers), "gate": {"name": gate, "init": init},
                     "attention": {"name": attention, "heads": 4, **attention_options}},
    })


def tiny_model(seed: int = 0, **kwargs):
    torch.manual_seed(seed)  # adapter init
    return build_model(tiny_config(**kwargs))
