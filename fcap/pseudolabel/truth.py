"""Pseudolabels against the shapes world's ground truth (the tiny profile's check).

A real collection has no ground truth: :func:`against_truth` returns None. On
the shapes world (``truth/clips.jsonl`` beside the ``howto100m/`` folder) it
scores every merged pseudolabel per attribute, as ``index.json``'s ``truth``
block: a still-frame captioner should name colour, shape and background, and
never the motion (``direction`` named in ~0% of clips, as with the real BLIP).
"""
from __future__ import annotations

from pathlib import Path

from fcap.data.shapes.attributes import ATTRIBUTES, parse
from fcap.data.shapes.truth import load_truth, truth_beside


def clip_id(record: dict) -> str:
    """The truth file's id of a pseudolabel record: ``<video_id>#<clip_index>``."""
    return f"{record['video_id']}#{record['clip_index']}"


def load_clip_truth(videos: str | Path) -> tuple[dict[str, dict], str] | None:
    """({clip id: record}, truth path) of the world a video folder belongs to; None for real data."""
    found = truth_beside(videos)
    return None if found is None else (load_truth(found[0], found[1]), found[0])


def against_truth(records: list[dict], videos: str | Path) -> dict | None:
    """Per-attribute accuracy and naming rate of the pseudolabels; None without ground truth."""
    loaded = load_clip_truth(videos)
    if loaded is None:
        return None
    truth, path = loaded
    scored = dict.fromkeys(ATTRIBUTES, 0)
    right, named = dict(scored), dict(scored)
    missing = 0
    for record in records:
        true = truth.get(clip_id(record))
        if true is None:
            missing += 1
            continue
        said = parse(record["caption"])
        for attr in ATTRIBUTES:
            if true.get(attr) is not None:
                scored[attr] += 1
                right[attr] += said[attr] == true[attr]
                named[attr] += said[attr] is not None
    return {"path": path, "clips": len(records) - missing, "clips_without_truth": missing,
            "accuracy": {a: round(right[a] / scored[a], 4) for a in ATTRIBUTES if scored[a]},
            "named": {a: round(named[a] / scored[a], 4) for a in ATTRIBUTES if scored[a]}}


def describe(true: dict | None) -> str:
    """A clip's ground truth in words, for the visual report."""
    if true is None:
        return "(no ground truth)"
    motion = f", moving {true['direction']}" if true.get("direction") else ""
    return f"{true['colour']} {true['shape']}{motion}, on {true['background']}"
