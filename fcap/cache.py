"""fcap's cache folder: ``$FCAP_CACHE``, default ``~/.cache/fcap``.

Tiny random models live in ``models/``, generated shapes worlds in
``shapes-world-<digest>/``. Everything there can be deleted and is rebuilt.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$FCAP_CACHE`` (or ``~/.cache/fcap``) joined with ``parts``."""
    root = os.environ.get("FCAP_CACHE") or os.path.join("~", ".cache", "fcap")
    return Path(root).expanduser().joinpath(*parts)
