"""Errors of fcap.data; each message names the file or key and what is wrong."""
from __future__ import annotations


class DataError(ValueError):
    """A data source cannot start: bad option, missing root, bad annotation file."""


class AnnotationError(DataError):
    """An annotation file is missing or malformed (raised at start-up)."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"annotation file {self.path}: {problem}")


class FeatureCacheError(DataError):
    """A visual feature cache is absent, stale or made for other settings."""


class SkipLimitError(RuntimeError):
    """Too many unreadable media files: the run stops rather than train on less."""


class MediaError(Exception):
    """One video or image could not be read; the loader skips it and counts it."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def require_root(source: str, root: object) -> str:
    """The ``root:`` option of a file-based source, or a DataError naming the key."""
    import os

    if root is None or root == "":
        raise DataError(f"data source '{source}': key 'root' is required "
                        f"(the dataset directory), got {root!r}")
    path = os.path.expanduser(str(root))
    if not os.path.isdir(path):
        raise DataError(f"data source '{source}': key 'root' = {str(root)!r} "
                        f"is not a directory")
    return path
