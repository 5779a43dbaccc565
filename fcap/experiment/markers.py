"""What a run directory says about its stage: RUN.json, DONE.json or FAILED.json (each with
the config hash), the resolved config.yaml and log.txt.

A run directory is fcap's (``fcap.io.claim_dir``) before anything is written
into it; whoever writes the markers holds its lock (:mod:`fcap.experiment.lock`).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from fcap.experiment import code_version, environment, inputs, rerun
from fcap.experiment.lock import RunLock
from fcap.io import claim_dir, write_json_atomic, write_text_atomic

__all__ = ["CONFIG", "DONE", "FAILED", "LOG", "RUN", "claim", "completed", "is_complete",
           "mark_done", "mark_failed", "mark_started", "note", "read_done", "read_started",
           "reads_incomplete", "redone_deps", "why_fresh", "write_config"]

DONE = "DONE.json"
FAILED = "FAILED.json"
RUN = "RUN.json"  # the config hash the run directory's outputs belong to
CONFIG = "config.yaml"
LOG = "log.txt"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOCK_WAIT_S = 30.0  # mark_started: time for a cancelled SLURM job to let go of the lock

log = logging.getLogger("fcap.launcher")


def claim(run) -> Path:
    """Make ``run.run_dir`` and its experiment folder ``<output_root>/<name>`` (report.md,
    plots/) fcap's, or raise ``fcap.io.OwnershipError`` (a user's folder)."""
    claim_dir(Path(run.run_dir).parents[1], kind="experiment", key="output_root")
    return claim_dir(run.run_dir, kind="run", key="output_root")


def write_config(run) -> Path:
    claim(run)
    path = run.run_dir / CONFIG
    return write_text_atomic(path, f"# resolved config of {run.key}; rerun with: fcap-run {path}\n"
                             + yaml.safe_dump(run.resolved, sort_keys=False))


def read_config(run) -> dict | None:
    """The config.yaml of ``run``'s last submission or run (None when absent or unreadable)."""
    return _read_yaml(run.run_dir / CONFIG)


def read_done(run) -> dict | None:
    return _read_json(run.run_dir / DONE)


def read_started(run) -> dict | None:
    """RUN.json: the latest attempt's config hash, start time, host and pid."""
    return _read_json(run.run_dir / RUN)


def is_complete(run) -> bool:
    """Done with the same config hash, the same inputs (fcap/experiment/inputs.py), and
    no stage it depends on completed again since (:func:`redone_deps`)."""
    return completed(run) is not None


def completed(run) -> dict | None:
    """DONE.json when ``run`` is complete (:func:`is_complete`), else None."""
    done = read_done(run)
    if (done and done.get("config_hash") == run.config_hash
            and not inputs.changed(run, done.get("inputs")) and not redone_deps(run, done)):
        return done
    return None


def redone_deps(run, done: dict) -> list[str]:
    """Why what ``run`` started from is not what it started from when ``done`` (its
    DONE.json) was written, one line per stage named by its ``init_from`` or ``after`` that
    completed again since, or is not complete now: ``--stages pretrain --force`` reruns
    pretraining with an unchanged config, and the fine-tuning made from the old adapters,
    and the evaluation of that fine-tuning, must not count as complete. Outputs read by
    reference (``{from: merge}``) are compared by content instead (:mod:`.inputs`): labels
    merged again byte for byte keep pretraining complete. A DONE.json without ``deps``
    (older fcap) is not checked."""
    recorded = done.get("deps")
    if not isinstance(recorded, dict):
        return []
    why = []
    for dep in _started_from(run):
        if dep.key not in recorded:
            continue
        now = completed(dep)
        if now is None:
            why.append(f"{dep.key} is not complete (it runs first)")
        elif now.get("id") != recorded[dep.key]:
            why.append(f"{dep.key} ran again since this stage completed")
    return why


def reads_incomplete(run) -> str:
    """For a complete ``run``: which stages it reads are not complete now (being redone), as
    ``fcap-run status`` words it; '' when none is."""
    waiting = [dep.key for dep in run.dep_runs if not is_complete(dep)]
    return (f"reads {', '.join(waiting)}, not complete now: checked again once it has run"
            if waiting else "")


def _started_from(run) -> list:
    """The dependencies ``run`` names by ``init_from`` or ``after`` (not only by a reference)."""
    spec = run.spec
    named = {spec.init_from, *spec.after} if spec is not None else set()
    return [dep for name, dep in zip(run.deps, run.dep_runs) if name in named]


def _dep_ids(run) -> dict[str, str | None]:
    """Completion ids (DONE.json's ``id``) of what ``run`` started from, for its DONE.json."""
    return {dep.key: (read_done(dep) or {}).get("id") for dep in _started_from(run)}


def mark_started(run, *, force: bool = False) -> str:
    """Prepare ``run.run_dir`` for a new attempt at ``run``; return why it starts from
    scratch ('' when it resumes from what is there).

    Claims the folder and, under its lock, moves aside the outputs of another
    config (or all outputs, with ``force``: see :mod:`fcap.experiment.rerun`),
    clears DONE/FAILED and records the attempt's config hash in RUN.json.
    """
    claim(run)
    run_dir = run.run_dir
    with RunLock(run_dir, what=f"stage {run.key}", wait_s=LOCK_WAIT_S):
        reason = why_fresh(run, force=force)
        before = _read_json(run_dir / RUN) or {}
        resumes = not reason and before.get("config_hash") == run.config_hash
        moved = rerun.move_aside(run_dir) if reason else None
        for name in (DONE, FAILED):
            (run_dir / name).unlink(missing_ok=True)
        write_json_atomic(run_dir / RUN, {
            "config_hash": run.config_hash, "task": run.task, "stage": run.key,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": socket.gethostname(),
            "pid": os.getpid(), "code": code_version.current(), "fresh_start": reason or None,
            "previous_outputs": str(moved) if moved else None,
            # 1 from scratch; after a stop or a failure, the attempt this one goes on from + 1
            "attempt": int(before.get("attempt") or 1) + 1 if resumes else 1})
        if reason:
            where = f"; previous outputs moved to {moved}" if moved else ""
            log.info("%s: %s%s", run.key, reason, where)
            note(run, f"stage {run.key} starts from scratch: {reason}{where}")
    return reason


def why_fresh(run, *, force: bool = False) -> str:
    """Why a new attempt at ``run`` would start from scratch ('' when it would resume)."""
    run_dir = run.run_dir
    previous = (_read_json(run_dir / RUN) or _read_json(run_dir / DONE)
                or _read_json(run_dir / FAILED) or {})
    reason = rerun.why_fresh(run, old_hash=previous.get("config_hash"),
                             old_doc=_read_yaml(run_dir / CONFIG), force=force)
    done = _read_json(run_dir / DONE) or {}
    changed = inputs.changed(run, done.get("inputs"))
    redone = redone_deps(run, done)
    return reason or (inputs.describe(run, changed) if changed else "") or "; ".join(redone)


def mark_done(run, summary: Any, wall_s: float, *, requeues: int = 0) -> None:
    """DONE.json. ``wall_s`` is this attempt's time; ``attempt`` (RUN.json's, plus the SLURM
    job's ``requeues``) says how many attempts the stage took: the earlier ones' time is
    not in ``wall_s``."""
    attempt = int((read_started(run) or {}).get("attempt") or 1) + requeues
    write_json_atomic(run.run_dir / DONE, {
        "config_hash": run.config_hash, "task": run.task, "summary": summary,
        "inputs": inputs.record(run),  # what it read from other stages, by content
        "id": uuid.uuid4().hex,  # this completion; the stages reading it record it in deps
        "deps": _dep_ids(run),
        "wall_s": round(wall_s, 3), "attempt": attempt,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "code": code_version.current(),  # the fcap that ran it (report.md's code column)
        "env": environment.current(),  # the libraries and processor (report.md's env column)
    })


def mark_failed(run, error: str) -> None:
    write_json_atomic(run.run_dir / FAILED, {
        "config_hash": run.config_hash, "task": run.task, "error": error,
        "log": str(run.run_dir / LOG), "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })


def note(run, message: str) -> None:
    """Append one launcher line to ``run``'s log.txt (what was decided about the stage)."""
    record = logging.LogRecord("fcap.launcher", logging.INFO, __file__, 0, message, None, None)
    with open(run.run_dir / LOG, "a") as f:
        f.write(logging.Formatter(LOG_FORMAT).format(record) + "\n")


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_yaml(path: Path) -> dict | None:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None
