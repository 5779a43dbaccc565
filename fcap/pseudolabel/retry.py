"""A finished shard labels again the failed videos whose files changed since they failed.

A shard's manifest lists each failed video with its path and the file's stamp
(size, mtime) when it failed. When the user repairs or replaces such a video
(a new download, a remux, another extension, a file for an id that had none)
and runs the stage again, the shard is reopened: its labels, its labelled
videos and its unchanged failures go back into the progress log, the manifest
is removed, and the run labels only the changed videos (files.py resumes from
the log). Captions are seeded per clip, so the kept labels are what a fresh
run would make. A failure recorded before stamps were kept is retried when
its path changed.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from fcap.io import OwnershipError, is_owned, write_text_atomic
from fcap.pseudolabel.files import ShardPaths, dumps_jsonl, read_jsonl


def file_stamp(path: str | None) -> list[int] | None:
    """``[size, mtime_ns]`` of a video file; None when there is no file."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def changed_failures(manifest: dict, videos: dict[str, Path | None]) -> list[dict]:
    """The manifest's failures whose video has another file now (``videos``: the shard's
    collection, ``{video_id: path}``). A failed video gone from the collection is not retried."""
    out = []
    for failure in manifest.get("failures", []):
        vid = failure["video_id"]
        if vid not in videos:
            continue
        now = None if videos[vid] is None else str(videos[vid])
        if now != failure.get("path") or ("stamp" in failure and file_stamp(now) != failure["stamp"]):
            out.append(failure)
    return out


def reopen(paths: ShardPaths, manifest: dict, retry: list[dict], logger: logging.Logger) -> None:
    """Turn a finished shard back into a progress log that lacks only the ``retry`` videos."""
    again = {f["video_id"] for f in retry}
    rows = [{"settings": manifest["settings"]}, *read_jsonl(paths.records)]
    rows += [{"video_done": vid, "num_clips": n, "error": None} for vid, n in manifest["videos"].items()]
    rows += [{"video_done": f["video_id"], "num_clips": 0, "error": f["error"], "path": f.get("path"),
              "stamp": f.get("stamp")} for f in manifest["failures"] if f["video_id"] not in again]
    if not is_owned(paths.shards_dir):
        raise OwnershipError(f"fcap will not rewrite {paths.manifest}: {paths.shards_dir} lost its "
                             "fcap marker")
    write_text_atomic(paths.progress, dumps_jsonl(rows), fsync=True)
    paths.manifest.unlink()  # after the log: a kill between the two reopens it again next run
    names = ", ".join(f.get("path") or f["video_id"] for f in retry[:5])
    logger.info("pseudolabel: %s: %d failed video(s) changed since they failed, labelling them "
                "again and keeping the shard's other labels: %s%s", paths.name, len(retry), names,
                " ..." if len(retry) > 5 else "")
