"""Rerunning a stage: resume its outputs, or move them aside and start from scratch.

A run directory's outputs belong to one config hash (``RUN.json``). Run again
with the same hash (interrupted, failed), a stage resumes from what is there
(checkpoints, finished shards). With another hash (its config, the seed or an
upstream stage changed) or with ``--force``, the outputs are moved into
``<run_dir>/.previous-<time>.old/`` first and the stage starts from scratch;
the log says why ("config changed: train.steps 20 -> 30"). Only the latest
such folder is kept: the one before it is removed when the next is made.

What stays in place: fcap's ownership marker, the run lock, and the SLURM
launcher's submission folder and record (they describe jobs, not outputs).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from fcap.config.schema import run_options
from fcap.io import MARKER, OwnershipError, is_owned, remove_scratch
from registry import TASKS

PREVIOUS = ".previous-"
KEEP_PREFIXES = (".fcap-owned", ".fcap-lock", PREVIOUS)
KEEP_NAMES = ("slurm", "slurm.json")  # fcap.launchers.slurm_status.LOG_DIR / RECORD
SHOWN = 6  # differences named in the log line


def why_fresh(run, *, old_hash: str | None, old_doc: dict | None, force: bool) -> str:
    """Why ``run`` must start from scratch over its run directory's outputs ('' to resume).

    ``old_hash``: the config hash the outputs belong to (None: unknown);
    ``old_doc``: the resolved config.yaml they were made with (None: absent).
    """
    if not outputs(run.run_dir):
        return ""
    if force:
        return "--force: starting from scratch"
    changes = config_changes(old_doc, run) if old_doc is not None else []
    if old_hash is not None and old_hash != run.config_hash:
        return "config changed: " + (_shorten(changes) if changes else (
            f"config hash {old_hash} -> {run.config_hash} with no option changed (how fcap "
            f"hashes this config changed: another fcap version, or a plugin's task)"))
    if old_hash is None and changes:
        return "config changed: " + _shorten(changes)
    return ""


def config_changes(old_doc: dict, run) -> list[str]:
    """'key old -> new' for the stage's own options (relative to its block), the seed, and
    the options of every stage it depends on (as ``stages.NAME.key``)."""
    new_doc = run.resolved
    stages_old = old_doc.get("stages") or {}
    stages_new = new_doc.get("stages") or {}
    out = _diff(hashed(stages_old.get(run.stage)), hashed(stages_new.get(run.stage)), "")
    if old_doc.get("seed") != new_doc.get("seed"):
        out.append(f"seed {old_doc.get('seed')!r} -> {new_doc.get('seed')!r}")
    for dep in _upstream(stages_new, run):
        out += _diff(hashed(stages_old.get(dep)), hashed(stages_new.get(dep)), f"stages.{dep}.")
    return out


def unhashed_changes(old_doc: dict | None, run) -> list[str]:
    """'stages.S.key old -> new' between the stage block ``old_doc`` (a config.yaml of the
    same config hash) holds and ``run``'s: its ``resources:`` and run options, the options
    a queued job was submitted with and keeps."""
    old = ((old_doc or {}).get("stages") or {}).get(run.stage)
    if old is None:
        return []
    return _diff(old, (run.resolved.get("stages") or {}).get(run.stage) or {}, f"stages.{run.stage}.")


def outputs(run_dir: Path) -> list[Path]:
    """What in ``run_dir`` a fresh start moves aside."""
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.iterdir()
                  if p.name not in KEEP_NAMES and not p.name.startswith(KEEP_PREFIXES))


def move_aside(run_dir: Path) -> Path | None:
    """Move the outputs of fcap-owned ``run_dir`` into a new ``.previous-<time>.old/``
    (removing the older one); return it, or None when there was nothing to move."""
    run_dir = Path(run_dir)
    if not is_owned(run_dir):  # claim_dir() comes first; never move a user's files
        raise OwnershipError(f"fcap will not move the contents of {run_dir} aside: it has no "
                             f"{MARKER} marker, so fcap did not create it")
    items = outputs(run_dir)
    if not items:
        return None
    for old in run_dir.glob(f"{PREVIOUS}*.old"):
        remove_scratch(old)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = run_dir / f"{PREVIOUS}{stamp}.old"
    n = 1
    while target.exists():
        n += 1
        target = run_dir / f"{PREVIOUS}{stamp}-{n}.old"
    target.mkdir()
    for item in items:
        os.replace(item, target / item.name)
    return target


def hashed(stage: dict | None) -> dict:
    """The part of a resolved stage block its config hash covers: all but ``resources:``
    and the task's run options (fcap.config.schema.run_option: workers, failure budget)."""
    stage = stage or {}
    try:
        skip = run_options(TASKS.get(stage.get("task")).config)
    except KeyError:  # a task no longer registered (an old config.yaml): compare it all
        skip = frozenset()
    return _without({k: v for k, v in stage.items() if k != "resources"}, skip)


def _without(block: dict, dotted: frozenset[str]) -> dict:
    """``block`` less the dotted keys ``dotted`` (copied where something is left out)."""
    out = {}
    for key, value in block.items():
        if key in dotted:
            continue
        inner = frozenset(d[len(key) + 1:] for d in dotted if d.startswith(key + "."))
        out[key] = _without(value, inner) if inner and isinstance(value, dict) else value
    return out


def _upstream(stages: dict, run) -> list[str]:
    """``run``'s dependencies, then theirs (``init_from``/``after`` in the resolved stages)."""
    order, todo = [], list(run.deps)
    while todo:
        dep = todo.pop(0)
        if dep in order or dep == run.stage:
            continue
        order.append(dep)
        block = stages.get(dep) or {}
        todo += [d for d in [block.get("init_from"), *(block.get("after") or [])] if d is not None]
    return order


def _diff(old, new, prefix: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            if key not in new:
                out.append(f"{prefix}{key} removed (was {old[key]!r})")
            elif key not in old:
                out.append(f"{prefix}{key} added ({new[key]!r})")
            else:
                out += _diff(old[key], new[key], f"{prefix}{key}.")
        return out
    if old != new:
        return [f"{prefix.rstrip('.')} {_short(old)} -> {_short(new)}"]
    return []


def _short(value) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _shorten(changes: list[str]) -> str:
    more = len(changes) - SHOWN
    return ", ".join(changes[:SHOWN]) + (f" and {more} more" if more > 0 else "")
