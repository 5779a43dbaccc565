"""Test plugin: tasks for reruns, locks and exit codes (loaded by path, not collected).

Tasks keep their state in the run dir, as real stages do (checkpoints, shards):
``rerun_append`` appends one line per attempt, so a resumed attempt sees the
lines of the one before and a fresh start does not.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from fcap.config import component, input_path, run_option
from fcap.tasks.datasets import DatasetsConfig
from registry import DATA_SOURCES, TASKS


@dataclass(frozen=True)
class AppendConfig:
    value: int = 1  # written on each attempt's line
    fail_if: str = ""  # fail (once) when this file exists in the working directory
    workers: int = run_option(1)  # changes nothing the task writes: not in the config hash


@TASKS.register("rerun_append", config=AppendConfig)
def rerun_append(cfg, ctx):
    """Append ``value`` to progress.txt; return how many attempts the run dir has seen."""
    with (ctx.run_dir / "progress.txt").open("a") as f:
        f.write(f"{cfg.value}\n")
    lines = (ctx.run_dir / "progress.txt").read_text().split()
    if cfg.fail_if and Path(cfg.fail_if).exists():
        Path(cfg.fail_if).unlink()
        raise RuntimeError("failing once on purpose")
    return {"attempts": len(lines)}


@dataclass(frozen=True)
class WaitConfig:
    release: str = "release"  # finish once this file exists in the working directory
    timeout_s: float = 60.0


@TASKS.register("rerun_wait", config=WaitConfig)
def rerun_wait(cfg, ctx):
    """Write started.txt, then wait for the release file; count runs in runs.txt."""
    with (ctx.run_dir / "runs.txt").open("a") as f:
        f.write("run\n")
    (ctx.run_dir / "started.txt").write_text("started")
    deadline = time.time() + cfg.timeout_s
    while not Path(cfg.release).exists():
        if time.time() > deadline:
            raise TimeoutError("never released")
        time.sleep(0.05)
    return {"runs": len((ctx.run_dir / "runs.txt").read_text().split())}


@dataclass(frozen=True)
class RaiseConfig:
    kind: str = "bug"  # which error to raise (see ERRORS)


def _errors() -> dict:
    from fcap.config.errors import ConfigError, Problem
    from fcap.data.errors import DataError, SkipLimitError
    from fcap.io import OwnershipError
    from fcap.train.checkpoint import CheckpointError

    return {
        "bug": RuntimeError("an unexpected failure"),
        "config": ConfigError([Problem("stage", "stages.x.kind", "a bad value found at run time")]),
        "skip_limit": SkipLimitError("7 of 20 videos could not be read (35% > 5%)"),
        "checkpoint": CheckpointError("checkpoint step-00000004 was written by 2 ranks"),
        "missing": FileNotFoundError("data source 'msrvtt': no folder /nowhere/videos"),
        "data": DataError("annotation file train.json: missing list 'sentences'"),
        "ownership": OwnershipError("fcap will not use /somewhere: it holds files fcap did "
                                    "not write"),
    }


@TASKS.register("rerun_raise", config=RaiseConfig)
def rerun_raise(cfg, ctx):
    """Raise the error named by ``kind``."""
    (ctx.run_dir / "raised.json").write_text(json.dumps({"kind": cfg.kind}))
    raise _errors()[cfg.kind]


@dataclass(frozen=True)
class ReadConfig:
    source: Optional[str] = input_path()  # a file made outside fcap (adapters trained elsewhere)


@TASKS.register("rerun_read", config=ReadConfig)
def rerun_read(cfg, ctx):
    """Copy ``source`` to copy.txt; return how many times this run dir was written."""
    text = Path(cfg.source).expanduser().read_text()
    (ctx.run_dir / "copy.txt").write_text(text)
    with (ctx.run_dir / "progress.txt").open("a") as f:
        f.write("read\n")
    return {"attempts": len((ctx.run_dir / "progress.txt").read_text().split())}


@dataclass(frozen=True)
class SourceConfig:
    data: Any = component(DATA_SOURCES, required=True)  # e.g. howto100m with pseudolabels
    datasets: DatasetsConfig = field(default_factory=DatasetsConfig)


@TASKS.register("rerun_source", config=SourceConfig)
def rerun_source(cfg, ctx):
    """Count this run directory's attempts (what the data source holds is not read)."""
    with (ctx.run_dir / "attempts.txt").open("a") as f:
        f.write("attempt\n")
    return {"attempts": len((ctx.run_dir / "attempts.txt").read_text().split())}
