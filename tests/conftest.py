"""Test-wide environment: offline hub, CPU DeepSpeed, and a fresh fcap cache per session."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def fcap_cache(tmp_path_factory):
    """Tiny models and shapes worlds go to a fresh cache (``$FCAP_CACHE``), never the user's;
    subprocesses and SLURM jobs started by tests inherit it."""
    old = os.environ.get("FCAP_CACHE")
    path = tmp_path_factory.mktemp("fcap-cache")
    os.environ["FCAP_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("FCAP_CACHE", None)
    else:
        os.environ["FCAP_CACHE"] = old
