"""Which fcap code ran a stage: the package version and, for a git checkout of fcap, the
commit and whether tracked files had uncommitted changes.

RUN.json and DONE.json record it when a stage starts and ends (fcap/experiment/markers.py);
report.md shows it for every run, and says when the runs of one table were made by
different code. Only a checkout whose top folder holds this very package counts: fcap
installed into a virtualenv that lives inside another git repository (``.venv/`` in a
project) is not "at" that project's commit.
"""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Optional

import fcap

PACKAGE_ROOT = Path(fcap.__file__).resolve().parents[1]  # the folder holding fcap/


@functools.lru_cache(maxsize=None)
def current(root: Path = PACKAGE_ROOT) -> dict:
    """``{"fcap": version, "commit": sha or None, "changes": bool or None}`` for the code
    this process imported (asked once per process: the modules it runs are loaded)."""
    commit = changes = None
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is not None and Path(top).resolve() == root.resolve():
        commit = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        changes = None if commit is None or status is None else bool(status)
    return {"fcap": fcap.__version__, "commit": commit, "changes": changes}


def short(code: Optional[dict]) -> str:
    """``8a6cea6`` (``8a6cea6+changes`` with uncommitted changes), the version for an
    install that is not a checkout, ``-`` when nothing was recorded (a run of older fcap)."""
    if not code:
        return "-"
    if not code.get("commit"):
        return f"fcap {code.get('fcap', '?')}"
    return code["commit"][:7] + ("+changes" if code.get("changes") else "")


def _git(root: Path, *args: str) -> Optional[str]:
    """git's stripped output, or None (no git, not a repository, refused, timed out)."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
