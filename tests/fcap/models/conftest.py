"""Tiny FrozenCaptioners for the model tests (built once per session, offline)."""
from __future__ import annotations

import pytest
import torch

from tiny_models import tiny_model


@pytest.fixture(scope="session")
def captioner(fcap_cache):
    return tiny_model()


@pytest.fixture(scope="session")
def batch(captioner):
    torch.manual_seed(1)
    text = captioner.prepare_text(["a red circle moves left", "a man is cooking in a kitchen",
                                   "blue star"], max_length=16)
    return {**text, "visual_features": torch.randn(3, 4, 16, 64)}
