"""Atomic, verified training checkpoints under ``<run_dir>/checkpoints/``.

Layout of one checkpoint (``step-00000120/``)::

    deepspeed/          DeepSpeed's files: trainable weights (frozen ones
                        excluded), ZeRO optimizer partitions, lr scheduler
    rank-00000.pt       per rank: RNG states, data-stream state, counters
    trainer.json        step, config hash, world size, counters
    MANIFEST.json       size and sha256 of every file above; written last

Everything is written into ``.tmp-step-00000120/`` (marked ``.fcap-owned``
when created, so fcap may remove it: :mod:`fcap.io`) and renamed when complete,
so a crash leaves either a whole checkpoint or a ``.tmp-*`` that is ignored. A
write that fails (disk full, quota) removes the temporary folder and raises
:class:`CheckpointError` naming the file system, the file and the space needed.
Only checkpoint folders holding the marker are pruned or replaced.

A checkpoint whose files do not match its manifest (truncated, overwritten,
missing) is reported and skipped in favour of the previous one. Every file,
DeepSpeed's included, is read with ``torch.load(..., weights_only=True)``: the
manifest proves integrity only to someone who cannot rewrite it, so a pickled
object outside :data:`DEEPSPEED_SAFE_GLOBALS` is refused, never run.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from fcap.io import (MARKER, OwnershipError, claim_dir, is_owned, remove_owned, remove_scratch,
                     write_json_atomic)
from fcap.train.distributed import DistInfo, all_reduce, barrier

DS_TAG = "deepspeed"
MANIFEST = "MANIFEST.json"
META = "trainer.json"
_STEP_RE = re.compile(r"^step-(\d{8})$")


# What DeepSpeed (0.19) pickles into its checkpoint files besides tensors, dtypes and
# builtins: the ZeRO 1/2 optimizer state holds the loss scaler (static, or dynamic for
# fp16), the ZeRO stage and each parameter's fragment address. Nothing else is unpickled.
DEEPSPEED_SAFE_GLOBALS = (
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.utils.tensor_fragment.fragment_address",
)
_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL (\S+)")


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


def save(engine, *, root: Path, step: int, rank_state: dict, meta: dict, info: DistInfo,
         keep_last: int) -> Path:
    """Collective: every rank calls it. Returns the final checkpoint directory.

    A write that fails on any rank (e.g. disk full) removes the partial
    ``.tmp-step-*`` folder and raises :class:`CheckpointError` on every rank.
    """
    root = Path(root)
    tmp = root / f".tmp-{step_name(step)}"
    final = root / step_name(step)
    where = {"tmp": tmp, "final": final, "engine": engine, "info": info}

    def own_files() -> None:
        engine.save_checkpoint(str(tmp), tag=DS_TAG, save_latest=False,
                               exclude_frozen_parameters=True)
        torch.save(rank_state, tmp / rank_file(info.rank))

    _collectively(lambda: _fresh_scratch(tmp) if info.is_main else None, **where)
    _collectively(own_files, **where)
    _collectively(lambda: _finish(tmp, final, root=root, step=step, meta=meta, info=info,
                                  keep_last=keep_last) if info.is_main else None, **where)
    return final


def _fresh_scratch(tmp: Path) -> None:
    """An empty, marked ``tmp``; a leftover of an earlier attempt is removed first."""
    claim_dir(tmp, kind="checkpoint being written")  # refuses a leftover fcap did not mark
    if any(p.name != MARKER for p in tmp.iterdir()):
        remove_scratch(tmp)
        claim_dir(tmp, kind="checkpoint being written")


def _finish(tmp: Path, final: Path, *, root: Path, step: int, meta: dict, info: DistInfo,
            keep_last: int) -> None:
    """Main rank: manifest, then rename ``tmp`` to ``final`` and prune old checkpoints."""
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    manifest = {str(p.relative_to(tmp)): {"size": p.stat().st_size, "sha256": _sha256(p)}
                for p in files}
    write_json_atomic(tmp / META, dict(meta, step=step, world_size=info.world_size), fsync=True)
    manifest[META] = {"size": (tmp / META).stat().st_size, "sha256": _sha256(tmp / META)}
    write_json_atomic(tmp / MANIFEST, {"step": step, "files": manifest}, fsync=True)
    if final.exists():  # re-saving a step (resumed from an older one): replace it
        if not is_owned(final):
            raise OwnershipError(f"fcap will not replace checkpoint {final}: it has no {MARKER} "
                                 "marker (written by an older fcap?); remove it by hand")
        stale = root / f".{step_name(step)}.old"
        remove_owned(stale)
        os.replace(final, stale)
        os.replace(tmp, final)
        remove_owned(stale)
    else:
        os.replace(tmp, final)
    _prune(root, keep_last)


def _collectively(part: Callable[[], None], *, tmp: Path, final: Path, engine,
                  info: DistInfo) -> None:
    """Run this rank's ``part`` of a save; if any rank failed, remove ``tmp`` and raise on all."""
    error: BaseException | None = None
    try:
        part()
    except (OSError, RuntimeError) as err:  # torch.save reports a full disk as a RuntimeError
        error = err
    if all_reduce([float(error is not None)], op="max", info=info)[0] == 0:
        return
    message = _space_message(error, tmp=tmp, engine=engine) if error is not None else None
    if info.is_main and is_owned(tmp):
        remove_scratch(tmp)
    barrier(info)
    if error is None:
        raise CheckpointError(f"checkpoint {final} was not written: another rank failed to write "
                              "its part (see its log); the partial checkpoint was removed")
    if message is None:
        raise error
    raise CheckpointError(message) from error


def _space_message(err: BaseException, *, tmp: Path, engine) -> str | None:
    """The message for a write that failed for lack of space; None for any other failure."""
    # a copy (DeepSpeed copies zero_to_fp32.py in) names its destination second
    named = (err.filename2 or err.filename) if isinstance(err, OSError) else None
    path = Path(named) if named else _newest_file(tmp)
    where = tmp
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    needed = _needed_bytes(tmp, engine)
    quota = isinstance(err, OSError) and err.errno == errno.EDQUOT
    no_space = (isinstance(err, OSError) and err.errno == errno.ENOSPC) or \
        "No space left on device" in str(err)
    # torch.save's zip writer says only "unexpected pos ..." when the disk fills up: its
    # plain RuntimeError with less free space left than the checkpoint needs is taken as one.
    guessed = type(err) is RuntimeError and free < needed
    if not (quota or no_space or guessed):
        return None
    what = "disk quota exceeded" if quota else "no space left"
    return (f"{what} on {_device(where)} while writing {path or tmp} (needed ~{_mb(needed)} MB, "
            f"{_mb(free)} MB free); the partial checkpoint {tmp.name} was removed, earlier "
            "checkpoints are intact. Free space there (or lower train.keep_last) and rerun: "
            "the stage resumes from its latest checkpoint")


def _newest_file(folder: Path) -> Path | None:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return max(files, key=lambda p: p.stat().st_mtime_ns, default=None)


def _needed_bytes(tmp: Path, engine) -> int:
    """The largest of: the newest complete checkpoint, what this save had written, and the
    engine's trainable weights + optimizer state."""
    sizes = [_tree_bytes(tmp)]
    done = sorted(_step_dirs(tmp.parent), key=lambda f: f.step)
    if done:
        sizes.append(_tree_bytes(done[-1].path))
    try:
        from fcap.train.engine import optimizer_state_bytes

        weights = sum(p.numel() * p.element_size() for p in engine.module.parameters()
                      if p.requires_grad)
        sizes.append(weights + optimizer_state_bytes(engine))
    except (AttributeError, TypeError):  # not a DeepSpeed engine (tests' stand-ins)
        pass
    return max(sizes)


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _device(path: Path) -> str:
    """``/dev/sda1 (mounted at /data)``: the file system holding ``path``."""
    mount = path.resolve()
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    source = None
    try:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[1] == str(mount):
                source = fields[0]  # the last entry for a mount point is the visible one
    except OSError:
        pass
    return f"{source} (mounted at {mount})" if source else str(mount)


def _mb(n: int) -> str:
    mb = n / 2**20
    return f"{mb:.0f}" if mb >= 10 else f"{mb:.1f}" if mb >= 0.1 else f"{mb:.2f}"


def _prune(root: Path, keep_last: int) -> None:
    """Remove all but the newest ``keep_last`` checkpoints; one without fcap's marker
    (written by an older fcap) is left in place."""
    found = sorted(_step_dirs(root), key=lambda f: f.step)
    for old in found[:-keep_last]:
        if is_owned(old.path):
            remove_owned(old.path)


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
    inner = engine.checkpoint_engine
    engine.checkpoint_engine = WeightsOnlyLoads(inner)
    try:
        load_path, _ = engine.load_checkpoint(str(found.path), tag=DS_TAG,
                                              load_module_strict=False, load_optimizer_states=True,
                                              load_lr_scheduler_states=True)
    except pickle.UnpicklingError as err:
        names = sorted(set(_UNSUPPORTED.findall(str(err)))) or [str(err).splitlines()[0]]
        raise CheckpointError(
            f"checkpoint {found.path} holds pickled objects fcap does not load: "
            f"{', '.join(names)}. DeepSpeed's files are read with torch.load(weights_only=True) "
            "and only fcap.train.checkpoint.DEEPSPEED_SAFE_GLOBALS may be unpickled; a file that "
            "needs more was not written by fcap (or by another DeepSpeed version)") from err
    finally:
        engine.checkpoint_engine = inner
    if load_path is None:
        raise CheckpointError(f"DeepSpeed could not load {found.path / DS_TAG}")
    state = torch.load(found.path / rank_file(info.rank), map_location="cpu", weights_only=True)
    return state, meta


class WeightsOnlyLoads:
    """DeepSpeed's checkpoint engine with every ``load`` through ``torch.load(weights_only=True)``.

    DeepSpeed 0.19's ``TorchCheckpointEngine.load`` passes ``weights_only=False``,
    so any pickled callable in a checkpoint file would run. Every file
    ``engine.load_checkpoint`` reads goes through ``engine.checkpoint_engine.load``;
    :func:`load` puts this wrapper there for the call. Saves are the wrapped engine's.
    """

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def load(self, path: str, map_location=None):
        with torch.serialization.safe_globals(deepspeed_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)


def deepspeed_safe_globals() -> list[type]:
    """The classes of :data:`DEEPSPEED_SAFE_GLOBALS` (imports DeepSpeed)."""
    import importlib

    out = []
    for name in DEEPSPEED_SAFE_GLOBALS:
        module, _, attr = name.rpartition(".")
        out.append(getattr(importlib.import_module(module), attr))
    return out
