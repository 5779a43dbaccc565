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


DIST_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "MASTER_ADDR",
             "MASTER_PORT")


@pytest.fixture(autouse=True)
def no_distributed_env_leak():
    """A test that leaves torch.distributed variables in os.environ fails (and they are
    removed): a later in-process stage would otherwise join a half-set rendezvous."""
    before = {k: os.environ.get(k) for k in DIST_KEYS}
    yield
    leaked = [k for k in DIST_KEYS if os.environ.get(k) != before[k]]
    for key in leaked:
        if before[key] is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before[key]
    assert not leaked, f"the test left {leaked} changed in os.environ"
