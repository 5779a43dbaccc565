"""Helpers the pseudolabel tests share (conftest.py cannot be imported by name: every
test folder has one)."""
import os
from pathlib import Path

LONG_FRAMES = 795  # the AVI: its first 100 KB decoded as a 0.3-s video


def collection(root: Path, sources: dict[str, Path]) -> Path:
    """A videos folder of symlinks ``<root>/<name> -> source``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        os.symlink(os.path.realpath(source), root / name)
    return root
