"""Atomic, verified training checkpoints under ``<run_dir>/checkpoints/``.

Layout of one checkpoint (``step-00000120/``)::

    deepspeed/          DeepSpeed's files: trainable weights (frozen ones
                        excluded), ZeRO optimizer partitions, lr scheduler
    rank-00000.pt       per rank: RNG states, data-stream state, counters
    trainer.json        step, config hash, world size, counters
    MANIFEST.json       size and sha256 of every file above; written last

Everything is written into ``.tmp-step-00000120/`` and renamed when complete,
so a crash leaves either a whole checkpoint or a ``.tmp-*`` that is ignored.
A checkpoint whose files do not match its manifest (truncated, overwritten,
missing) is reported and skipped in favour of the previous one. The manifest
check runs before DeepSpeed unpickles its files; fcap's own files are read with
``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fcap.train.distributed import DistInfo, barrier

DS_TAG = "deepspeed"
MANIFEST = "MANIFEST.json"
META = "trainer.json"
_STEP_RE = re.compile(r"^step-(\d{8})$")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used (message names the directory and why)."""


@dataclass(frozen=True)
class Found:
    path: Path
    step: int


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def rank_file(rank: int) -> str:
    return f"rank-{rank:05d}.pt"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save(engine, *, root: Path, step: int, rank_state: dict, meta: dict, info: DistInfo,
         keep_last: int) -> Path:
    """Collective: every rank calls it. Returns the final checkpoint directory."""
    root = Path(root)
    tmp = root / f".tmp-{step_name(step)}"
    if info.is_main:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    barrier(info)
    engine.save_checkpoint(str(tmp), tag=DS_TAG, save_latest=False, exclude_frozen_parameters=True)
    torch.save(rank_state, tmp / rank_file(info.rank))
    barrier(info)
    final = root / step_name(step)
    if info.is_main:
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {str(p.relative_to(tmp)): {"size": p.stat().st_size, "sha256": _sha256(p)}
                    for p in files}
        _write_json(tmp / META, dict(meta, step=step, world_size=info.world_size))
        manifest[META] = {"size": (tmp / META).stat().st_size, "sha256": _sha256(tmp / META)}
        _write_json(tmp / MANIFEST, {"step": step, "files": manifest})
        if final.exists():  # re-saving a step (resumed from an older one): replace it
            stale = root / f".stale-{step_name(step)}"
            shutil.rmtree(stale, ignore_errors=True)
            os.replace(final, stale)
            os.replace(tmp, final)
            shutil.rmtree(stale)
        else:
            os.replace(tmp, final)
        _prune(root, keep_last)
    barrier(info)
    return final


def _prune(root: Path, keep_last: int) -> None:
    found = sorted(_step_dirs(root), key=lambda f: f.step)
    for old in found[:-keep_last]:
        shutil.rmtree(old.path, ignore_errors=True)


def _step_dirs(root: Path) -> list[Found]:
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        m = _STEP_RE.match(p.name)
        if m and p.is_dir():
            out.append(Found(p, int(m.group(1))))
    return out


def problem(path: Path) -> str | None:
    """Why ``path`` is not a usable checkpoint, or None when it is."""
    mpath = path / MANIFEST
    if not mpath.is_file():
        return f"no {MANIFEST} (partial write)"
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as err:
        return f"unreadable {MANIFEST}: {err}"
    for rel, want in sorted(files.items()):
        p = path / rel
        if not p.is_file():
            return f"missing file {rel}"
        if p.stat().st_size != want["size"]:
            return f"{rel} has {p.stat().st_size} bytes, manifest says {want['size']}"
        if _sha256(p) != want["sha256"]:
            return f"{rel} does not match its sha256 in {MANIFEST}"
    return None


def latest_valid(root: Path, *, report) -> Found | None:
    """The newest checkpoint that passes :func:`problem`; ``report(msg)`` for each skipped one."""
    for found in sorted(_step_dirs(Path(root)), key=lambda f: -f.step):
        why = problem(found.path)
        if why is None:
            return found
        report(f"checkpoint {found.path} is unusable ({why}); trying the previous one")
    return None


def load(engine, found: Found, *, info: DistInfo, config_hash: str) -> tuple[dict, dict]:
    """Restore the engine from ``found``; return (this rank's state, trainer meta)."""
    meta = json.loads((found.path / META).read_text())
    if meta.get("config_hash") != config_hash:
        raise CheckpointError(
            f"checkpoint {found.path} was written by a stage with config hash "
            f"{meta.get('config_hash')}, this stage has {config_hash}: the stage's config changed "
            "since it was interrupted; delete its checkpoints/ to start over")
    if meta.get("world_size") != info.world_size:
        raise CheckpointError(
            f"checkpoint {found.path} was written by {meta.get('world_size')} ranks, this run has "
            f"{info.world_size}: per-rank data positions and RNG states cannot be remapped")
    load_path, _ = engine.load_checkpoint(str(found.path), tag=DS_TAG, load_module_strict=False,
                                          load_optimizer_states=True, load_lr_scheduler_states=True)
    if load_path is None:
        raise CheckpointError(f"DeepSpeed could not load {found.path / DS_TAG}")
    state = torch.load(found.path / rank_file(info.rank), map_location="cpu", weights_only=True)
    return state, meta
