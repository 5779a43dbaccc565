"""Trained adapters between stages: where a stage starts from, and how it hands its own on."""
from __future__ import annotations

import os
from pathlib import Path

from fcap.io import OwnershipError, claim_dir, is_owned, remove_owned


def export_adapters(model, run_dir: Path) -> Path:
    """``<run_dir>/adapters/`` (safetensors + manifest, fcap-owned), replaced atomically.

    The previous ``adapters/`` is removed only if fcap wrote it (its marker).
    """
    final = Path(run_dir) / "adapters"
    tmp = Path(run_dir) / ".adapters.tmp"
    old = Path(run_dir) / ".adapters.old"
    for scratch in (tmp, old):
        remove_owned(scratch)
    claim_dir(tmp, kind="adapters")
    model.save_adapters(tmp)
    if final.exists():
        if not is_owned(final):
            raise OwnershipError(f"fcap will not replace {final}: it has no fcap marker, so fcap "
                                 "did not write it; move it away")
        os.replace(final, old)
    os.replace(tmp, final)
    remove_owned(old)
    return final


def upstream_adapters(ctx, explicit: str | None, *, task: str, required: bool) -> Path | None:
    """The adapters directory to start from: ``explicit`` or ``<ctx.init_from>/adapters``."""
    if explicit:
        path = Path(explicit).expanduser()
    elif ctx.init_from is not None:
        path = Path(ctx.init_from) / "adapters"
    elif required:
        raise ValueError(f"task '{task}' (stage {ctx.stage}) starts from trained adapters: give the "
                         "stage 'init_from: <stage>' (e.g. init_from: pretrain) or set 'adapters:' "
                         "to a directory written by save_adapters")
    else:
        return None
    if not path.is_dir():
        raise FileNotFoundError(f"task '{task}' (stage {ctx.stage}): no adapters directory {path} "
                                "(did the upstream stage finish?)")
    return path
