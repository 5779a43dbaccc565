"""The shapes world's ground truth: every item's colour, shape, direction and background.

The world writes ``truth/clips.jsonl`` beside its dataset layouts (never inside
them: the layouts hold what the real datasets hold). One JSON record per item:
``{id, layout, split, colour, shape, direction, background}``; ``direction`` is
null for a still LAION image; HowTo100M clips are ``<video_id>#<clip_index>``.
"""
from __future__ import annotations

import json
import os
from typing import Optional

from fcap.data.shapes.world import CLIPS, LAYOUTS, TRUTH


def load_truth(path: str | os.PathLike, layout: Optional[str] = None) -> dict[str, dict]:
    """``{item id: record}`` from a world's ``truth/clips.jsonl``.

    ``path``: the world's root, its ``truth/`` folder or the file itself;
    ``layout``: keep only that layout's items (ids are unique per layout).
    """
    path = os.fspath(path)
    for candidate in (path, os.path.join(path, CLIPS), os.path.join(path, TRUTH, CLIPS)):
        if os.path.isfile(candidate):
            break
    else:
        raise FileNotFoundError(f"no shapes-world ground truth at {path} (looked for the file, "
                                f"{CLIPS} in it and {TRUTH}/{CLIPS} under it)")
    out: dict[str, dict] = {}
    with open(candidate) as f:
        for line in f:
            record = json.loads(line)
            if layout is None or record["layout"] == layout:
                out[record["id"]] = record
    return out


def truth_beside(layout_dir: str | os.PathLike) -> tuple[str, str] | None:
    """(truth file, layout) for a layout folder of a shapes world (``<world>/msrvtt``).

    None for any other folder (a real dataset has no ground truth beside it).
    """
    layout_dir = os.path.abspath(os.path.expanduser(os.fspath(layout_dir)))
    path = os.path.join(os.path.dirname(layout_dir), TRUTH, CLIPS)
    layout = os.path.basename(layout_dir)
    return (path, layout) if layout in LAYOUTS and os.path.isfile(path) else None
