"""Tiny FrozenCaptioners for the model tests (built once per session, offline)."""
from __future__ import annotations

import os

import pytest
import torch

from tiny_models import tiny_model


@pytest.fixture(scope="session", autouse=True)
def fcap_cache(tmp_path_factory):
    """Tiny models go to a fresh cache, never the user's."""
    old = os.environ.get("FCAP_CACHE")
    path = tmp_path_factory.mktemp("fcap-cache")
    os.environ["FCAP_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("FCAP_CACHE", None)
    else:
        os.environ["FCAP_CACHE"] = old


@pytest.fixture(scope="session")
def captioner(fcap_cache):
    return tiny_model()


@pytest.fixture(scope="session")
def batch(captioner):
    torch.manual_seed(1)
    text = captioner.prepare_text(["a red circle moves left", "a man is cooking in a kitchen",
                                   "blue star"], max_length=16)
    return {**text, "visual_features": torch.randn(3, 4, 16, 64)}
