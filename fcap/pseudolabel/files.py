"""Shard files: atomic final writes and the append-only progress log used to resume.

Layout (docs/CONTRACTS.md), inside ``<out>/shards/``:

- ``.fcap-owned``: fcap's marker (fcap/io.py): ``shards/`` is claimed before
  anything is written, so a folder holding files fcap did not write is refused.
- ``shard-00000-of-00004.jsonl``: the finished shard, one record per clip,
  sorted by (video_id, clip_index); written atomically and fsynced
  (``fcap.io.write_text_atomic(..., fsync=True)``), so a reader sees it
  complete or not at all, even after a crash of the machine.
- ``shard-00000-of-00004.manifest.json``: written (atomically) after the
  JSONL; its presence marks the shard finished and a rerun skips it.
- ``shard-00000-of-00004.progress.jsonl``: while running, an append-only log
  flushed (and fsynced) every ``flush_every`` clips: a ``settings`` header,
  clip records, and ``video_done`` lines. A killed job leaves at most a
  truncated last line, which is ignored; the next run keeps every flushed
  record and labels only the rest. Deleted once the shard is finished.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

RECORD_KEYS = ("video_id", "clip_index", "start", "end", "frame_time", "caption")


@dataclass(frozen=True)
class ShardPaths:
    shards_dir: Path
    name: str

    @property
    def records(self) -> Path:
        return self.shards_dir / f"{self.name}.jsonl"

    @property
    def manifest(self) -> Path:
        return self.shards_dir / f"{self.name}.manifest.json"

    @property
    def progress(self) -> Path:
        return self.shards_dir / f"{self.name}.progress.jsonl"


def dumps_jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}: line {n} is not JSON ({err})") from None
    return rows


@dataclass
class Progress:
    """What a progress log holds: settings header, flushed records, finished videos."""

    settings: dict | None = None
    records: dict[tuple[str, int], dict] = field(default_factory=dict)
    videos_done: dict[str, dict] = field(default_factory=dict)  # id -> {num_clips, error, path}

    def done_clips(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for vid, idx in self.records:
            out.setdefault(vid, set()).add(idx)
        return out


def read_progress(path: Path) -> Progress:
    """Parse a progress log; a truncated final line (killed mid-write) is dropped."""
    progress = Progress()
    if not path.is_file():
        return progress
    lines = path.read_text().splitlines(keepends=True)
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines) and not line.endswith("\n"):
                break  # the write a kill interrupted; those clips are labelled again
            raise ValueError(f"{path}: line {n} is corrupt; delete the file to restart this shard") from None
        if "settings" in row:
            progress.settings = row["settings"]
        elif "video_done" in row:
            progress.videos_done[row["video_done"]] = {"num_clips": row["num_clips"],
                                                       "error": row.get("error"),
                                                       "path": row.get("path"),
                                                       "stamp": row.get("stamp")}
        else:
            progress.records[(row["video_id"], row["clip_index"])] = row  # later copy wins: no dupes
    return progress


class ProgressLog:
    """Append-only writer: ``flush()`` makes everything written so far durable."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair(path)
        self.file = open(path, "a")

    @staticmethod
    def _repair(path: Path) -> None:
        # Cut a truncated last line so appended lines start on a fresh line.
        if path.is_file():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(path, "r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)

    def write(self, rows: Iterable[dict]) -> None:
        self.file.write(dumps_jsonl(rows))

    def flush(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()
