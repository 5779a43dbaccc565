"""Reading annotation files so that every problem names the file and what is wrong."""
from __future__ import annotations

import json
import os
from typing import Any, Iterator

from fcap.data.errors import AnnotationError


def read_json(path: str, *, what: str) -> Any:
    """Parse a JSON annotation file; ``what`` describes the expected format."""
    if not os.path.isfile(path):
        raise AnnotationError(path, f"missing (expected {what})")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise AnnotationError(path, f"not valid JSON ({err}); expected {what}") from None
    except OSError as err:  # permission denied, an I/O error on a network file system
        raise AnnotationError(path, f"cannot be read: {err.strerror or err}") from None


def read_jsonl(path: str, *, what: str) -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` of a JSON-lines file, blank lines ignored."""
    if not os.path.isfile(path):
        raise AnnotationError(path, f"missing (expected {what})")
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                raise AnnotationError(path, f"line {number}: not valid JSON ({err})") from None
            if not isinstance(record, dict):
                raise AnnotationError(path, f"line {number}: expected a JSON object, got "
                                            f"{type(record).__name__}")
            yield number, record


def read_lines(path: str, *, what: str) -> Iterator[tuple[int, str]]:
    """``(line number, stripped line)`` of a text file, blank and ``#`` lines ignored."""
    if not os.path.isfile(path):
        raise AnnotationError(path, f"missing (expected {what})")
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError as err:  # permission denied, an I/O error on a network file system
        raise AnnotationError(path, f"cannot be read: {err.strerror or err}") from None
    with f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if line and not line.startswith("#"):
                yield number, line


def require_keys(path: str, where: str, record: Any, keys: dict[str, type | tuple]) -> None:
    """Raise AnnotationError unless ``record`` is a dict with ``keys`` of the given types."""
    if not isinstance(record, dict):
        raise AnnotationError(path, f"{where}: expected an object, got {type(record).__name__}")
    for key, types in keys.items():
        if key not in record:
            raise AnnotationError(path, f"{where}: missing key '{key}' "
                                        f"(has: {', '.join(sorted(map(str, record))) or 'none'})")
        if not isinstance(record[key], types) or isinstance(record[key], bool):
            raise AnnotationError(path, f"{where}: key '{key}' should be {_names(types)}, "
                                        f"got {type(record[key]).__name__} {record[key]!r:.60}")


def _names(types: type | tuple) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__
