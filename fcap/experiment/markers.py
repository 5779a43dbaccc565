"""Completion markers in a run directory: DONE.json (with the config hash) or FAILED.json."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

DONE = "DONE.json"
FAILED = "FAILED.json"
CONFIG = "config.yaml"
LOG = "log.txt"


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def write_config(run) -> Path:
    run.run_dir.mkdir(parents=True, exist_ok=True)
    path = run.run_dir / CONFIG
    tmp = path.with_name(f".{CONFIG}.tmp{os.getpid()}")
    tmp.write_text(f"# resolved config of {run.key}; rerun with: fcap-run {path}\n"
                   + yaml.safe_dump(run.resolved, sort_keys=False))
    os.replace(tmp, path)
    return path


def read_done(run) -> dict | None:
    path = run.run_dir / DONE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_complete(run) -> bool:
    """Done with the same config hash (a changed config means it must rerun)."""
    done = read_done(run)
    return bool(done) and done.get("config_hash") == run.config_hash


def mark_started(run) -> None:
    for name in (DONE, FAILED):
        (run.run_dir / name).unlink(missing_ok=True)


def mark_done(run, summary: Any, wall_s: float) -> None:
    write_json_atomic(run.run_dir / DONE, {
        "config_hash": run.config_hash, "task": run.task, "summary": summary,
        "wall_s": round(wall_s, 3), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })


def mark_failed(run, error: str) -> None:
    write_json_atomic(run.run_dir / FAILED, {
        "config_hash": run.config_hash, "task": run.task, "error": error,
        "log": str(run.run_dir / LOG), "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
