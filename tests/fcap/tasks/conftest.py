import logging

import pytest
import torch

from fcap.components import load_builtins
from fcap.config import from_dict
from fcap.context import StageContext
from registry import TASKS

MODEL = {"lm": {"name": "opt", "source": "tiny"}, "visual": {"name": "timesformer", "source": "tiny"},
         "adapters": {"layers": [2, 3]}}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Two cores shared with other jobs: intra-op threads spin and slow tiny
    # models down ~10x, so these tests run single-threaded.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_stage(root, name, task, body, *, init_from=None, extra=None, config_hash=None):
    """Validate ``body`` like the experiment loader does and run the task from a StageContext."""
    load_builtins()
    entry = TASKS.get(task)
    cfg = from_dict(entry.config, body, source="test", key=f"stages.{name}")
    ctx = StageContext(experiment="tests", variant="default", stage=name, run_dir=root / name,
                       config_hash=config_hash or f"hash-{name}", init_from=init_from, seed=0,
                       logger=logging.getLogger(f"fcap.test.{name}"), extra=dict(extra or {}))
    return entry.obj(cfg, ctx)


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    """The shapes world as the tiny profile reads it (``datasets.shapes_world`` + the real
    ``msrvtt`` reader), with feature caches of its train and test splits."""
    root = tmp_path_factory.mktemp("shapes")
    datasets = {"num_workers": 0, "shapes_world": {}}  # generated in the session's fcap cache
    source = {"name": "msrvtt", "root": "msrvtt"}
    out = {"root": root, "source": source, "datasets": datasets}
    for split in ("train", "test"):
        summary = run_stage(root, f"features-{split}", "extract_features",
                            {"model": MODEL, "data": dict(source, split=split),
                             "datasets": datasets, "batch_size": 40})
        out[split] = dict(source, split=split, features=summary["out_dir"])
    return out


TRAINED_STEPS = 200


@pytest.fixture(scope="session")
def trained(shapes):
    """caption_pretrain on the shapes train features: the learning sanity check's recipe."""
    return run_stage(shapes["root"], "pretrain", "caption_pretrain", {
        "model": MODEL, "data": shapes["train"], "datasets": shapes["datasets"],
        "optimizer": {"name": "adamw", "lr": 5e-3},
        "train": {"steps": TRAINED_STEPS, "batch_size": 16, "log_every": 20, "save_every": 100}})
