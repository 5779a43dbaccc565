"""Files fcap writes, and the one rule for removing anything: fcap's own marker.

fcap deletes or overwrites only what it created and marked. A folder fcap
creates for its output (a run directory, a generated dataset, a cache entry, a
feature cache, a pseudolabel output folder) holds ``.fcap-owned``, written when
fcap created the folder. Then:

- :func:`claim_dir` creates a folder and marks it; an existing folder is
  claimed only if it is marked already or empty. A folder holding files fcap
  did not write raises :class:`OwnershipError` naming it.
- :func:`remove_owned` removes a folder only if it is marked (or is fcap's own
  temporary/old name inside a marked parent: see :func:`remove_scratch`).
- :func:`write_json_atomic` / :func:`write_text_atomic` write through a
  temporary name and ``os.replace`` (``fsync=True``: flushed to the disk
  first, for files whose presence marks finished work); they are fcap's only
  atomic writers, and callers write only inside folders they claimed.

docs/CONTRACTS.md ("Data ownership") states the rule for plugin authors.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

MARKER = ".fcap-owned"


class OwnershipError(RuntimeError):
    """fcap was asked to write into, or remove, something it did not create."""


class UnwritableError(RuntimeError):
    """A folder fcap must create cannot be created or written there (no permission, a
    read-only file system, a mount that is not there): the path chosen is wrong."""


def is_owned(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding fcap's marker."""
    return (Path(path) / MARKER).is_file()


def claim_dir(path: str | os.PathLike, *, kind: str, key: str | None = None) -> Path:
    """Create ``path`` (and parents) as an fcap-owned folder of ``kind``; return it.

    An existing folder is accepted when it holds the marker, or is empty (then
    marked). Any other existing folder, or a file at ``path``, raises
    :class:`OwnershipError`; ``key`` names the config key that chose the path.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OwnershipError(_refusal(path, kind, key, "it is a file, not a folder"))
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():  # output_root=some/file
        raise OwnershipError(_refusal(path, kind, key, f"{above} is a file, not a folder"))
    if path.is_dir() and not is_owned(path):
        # another process claiming it at the same moment (a SLURM array's elements) may be
        # writing its marker: that temporary file is fcap's own, not the user's; and it may
        # have finished, marker and first files, between the look above and the listing,
        # so the marker is looked for again after listing (fcap writes it before anything)
        foreign = [p for p in path.iterdir() if not _marker_in_progress(p.name)]
        if foreign and not is_owned(path):
            raise OwnershipError(_refusal(path, kind, key, "it exists, holds files fcap did not "
                                          f"write and has no {MARKER} marker"))
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not is_owned(path):
            body = {"kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "host": socket.gethostname(), "pid": os.getpid()}
            write_text_atomic(path / MARKER, json.dumps(body, indent=1) + "\n")
    except OSError as err:
        where = f" (set by {key})" if key else ""
        raise UnwritableError(
            f"fcap cannot create its {kind} folder {path}{where}: {err.strerror or err} "
            f"({err.filename or path}); choose a path this user can write "
            f"(user {_user()} on {socket.gethostname()})") from err
    return path


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _marker_in_progress(name: str) -> bool:
    """The temporary name write_text_atomic gives the marker while writing it."""
    return name.startswith(f".{MARKER}.tmp")


def _refusal(path: Path, kind: str, key: str | None, why: str) -> str:
    where = f" (set by {key})" if key else ""
    return (f"fcap will not use {path}{where} as its {kind} folder: {why}. fcap only writes into "
            f"and removes folders it created; choose another path or an empty folder")


def remove_owned(path: str | os.PathLike) -> bool:
    """Remove the fcap-owned folder ``path``; False if it does not exist.

    Raises :class:`OwnershipError` when the folder has no marker.
    """
    path = Path(path)
    if not path.exists():
        return False
    if not is_owned(path):
        raise OwnershipError(f"fcap will not remove {path}: it has no {MARKER} marker, so fcap "
                             "did not create it")
    shutil.rmtree(path)
    return True


def remove_scratch(path: str | os.PathLike) -> bool:
    """Remove fcap's own temporary/old folder ``path`` inside an fcap-owned parent.

    Scratch names start with ``.`` and end in ``.tmp``/``.old`` (or contain
    ``.tmp``): e.g. ``.adapters.tmp``. Anything else raises OwnershipError.
    """
    path = Path(path)
    name = path.name
    if not (name.startswith(".") and (".tmp" in name or name.endswith(".old"))):
        raise OwnershipError(f"fcap will not remove {path}: not one of fcap's scratch names")
    if not is_owned(path.parent) and not is_owned(path):
        raise OwnershipError(f"fcap will not remove {path}: its folder {path.parent} has no "
                             f"{MARKER} marker")
    if not path.exists():
        return False
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    return True


def write_text_atomic(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    """Write ``text`` to ``path`` via a temporary name in the same folder, then rename.

    Readers see the old file or the whole new one. ``fsync``: the data reaches
    the disk before the rename, so the file also survives a crash of the
    machine (a shard manifest, a checkpoint's MANIFEST.json).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json_atomic(path: str | os.PathLike, data: Any, *, indent: int = 1,
                      fsync: bool = False) -> Path:
    """Atomic JSON (sorted keys); NaN/inf become null, other objects their str()."""
    return write_text_atomic(path, json.dumps(_finite(data), indent=indent, sort_keys=True,
                                              default=str) + "\n", fsync=fsync)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x
