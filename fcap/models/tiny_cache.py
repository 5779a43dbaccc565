"""The fcap cache of tiny models: one folder per model, built once, shared by processes.

Every tiny model -- random (``source: tiny``: OPT, TimeSformer, BLIP) or
pretrained on generated data (``source: tiny-pretrained``,
:mod:`fcap.models.pretrain_tiny`) -- lives in
``<fcap cache>/models/<prefix>-<kind>-<hash>`` (``$FCAP_CACHE``, default
``~/.cache/fcap``; :mod:`fcap.cache`), the hash over the kind, a format
version and the model's options (dims, and recipe for pretrained ones), in the
real transformers format, so it loads through ``from_pretrained`` like a hub
checkpoint.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from fcap.cache import cache_dir
from fcap.io import claim_dir, remove_owned, write_json_atomic

FORMAT = 1  # bump when a tiny builder changes what it writes
DONE = "fcap-tiny.json"  # written last into a finished model folder


def cache_root() -> Path:
    """Where tiny models are saved: ``<fcap cache>/models`` (:mod:`fcap.cache`)."""
    return cache_dir("models")


def tiny_path(kind: str, options: Any, *, version: Any = FORMAT,
              prefix: str = "tiny") -> tuple[Path, dict]:
    """(cache folder, hashed parameters) of a tiny model, built or not."""
    params = {"kind": kind, "format": version, **dataclasses.asdict(options)}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root() / f"{prefix}-{kind.replace('.', '-')}-{digest}", params


def tiny_dir(kind: str, options: Any, build: Callable[[Path, Any], None], *,
             version: Any = FORMAT, prefix: str = "tiny", wait: bool = True) -> Path | None:
    """Build (once) and return the cache folder of a tiny model.

    The folder is ``<cache>/models/<prefix>-<kind>-<hash>``, the hash over
    ``kind``, ``version`` and ``options``. ``build(out, options)`` writes into a
    claimed scratch folder that is renamed into place with ``fcap-tiny.json``
    (the parameters) last; a file lock (``models/.locks/``) makes a second
    process wait for a build in progress instead of repeating it; with
    ``wait=False`` it returns None at once instead (the caller builds something
    else meanwhile: :func:`fcap.models.pretrain_tiny.prepare`). A rename
    never replaces a non-empty folder, and only the marked scratch folder is
    ever removed.
    """
    out, params = tiny_path(kind, options, version=version, prefix=prefix)
    root = out.parent
    if (out / DONE).exists():
        return out
    locks = claim_dir(root / ".locks", kind="tiny model build locks", key="FCAP_CACHE")
    with open(locks / f"{out.name}.lock", "w") as lock:
        try:  # released when the file closes
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # only without wait: another process is building it
            return None
        if (out / DONE).exists():  # built by another process while we waited
            return out
        tmp = claim_dir(tempfile.mkdtemp(dir=root, prefix=".building-"), kind="tiny model")
        try:
            build(tmp, options)
            write_json_atomic(tmp / DONE, params)
            try:
                os.replace(tmp, out)  # atomic; loses the race harmlessly if another process won
            except OSError:
                if not (out / DONE).exists():
                    raise
        finally:
            remove_owned(tmp)  # gone after a successful rename; marked by claim_dir above
    return out
