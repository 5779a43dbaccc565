"""Test-wide environment: offline hub, CPU DeepSpeed, and a fresh fcap cache per session."""
import os

import pytest

from hf_cache import put_in_hub_cache

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


# The hub ids the paper's configs name, as if downloaded (fcap.models.hub.check asks the local
# cache for their config.json): tests that plan paper-profile runs are not about these models.
DOWNLOADED = ("facebook/opt-1.3b", "Salesforce/blip-image-captioning-large",
              "facebook/timesformer-base-finetuned-k400")


@pytest.fixture(scope="session", autouse=True)
def hub_cache(tmp_path_factory):
    """A Hugging Face hub cache of the session's own (``$HF_HUB_CACHE``, never the user's)
    in which :data:`DOWNLOADED` are present as their ``config.json`` only; subprocesses
    inherit it. A test adds an id with :func:`hf_cache.put_in_hub_cache`."""
    from huggingface_hub import constants

    old = os.environ.get("HF_HUB_CACHE"), constants.HF_HUB_CACHE
    path = tmp_path_factory.mktemp("hf-hub-cache")
    os.environ["HF_HUB_CACHE"] = constants.HF_HUB_CACHE = str(path)
    for repo_id in DOWNLOADED:
        put_in_hub_cache(path, repo_id, {})
    yield path
    constants.HF_HUB_CACHE = old[1]
    if old[0] is None:
        os.environ.pop("HF_HUB_CACHE", None)
    else:
        os.environ["HF_HUB_CACHE"] = old[0]


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
