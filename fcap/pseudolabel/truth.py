"""Pseudolabels against the shapes world's ground truth (the tiny profile's check).

A real collection has no ground truth: :func:`against_truth` returns None. On
the shapes world (``truth/clips.jsonl`` beside the ``howto100m/`` folder) it
scores every merged pseudolabel per attribute, as ``index.json``'s ``truth``
block: a still-frame captioner should name colour, shape and background, and
never the motion (``direction`` named in ~0% of clips, as with the real BLIP).
"""
from __future__ import annotations

from pathlib import Path

from fcap.data.shapes.attributes import ATTRIBUTES, tally
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
    known = [r for r in records if clip_id(r) in truth]
    counts = tally((r["caption"], truth[clip_id(r)]) for r in known)
    return {"path": path, "clips": len(known), "clips_without_truth": len(records) - len(known),
            "accuracy": _rounded(counts.rate(counts.right)),
            "named": _rounded(counts.rate(counts.named))}


def _rounded(rates: dict[str, float]) -> dict[str, float]:
    return {a: round(v, 4) for a, v in rates.items() if a in ATTRIBUTES}


def describe(true: dict | None) -> str:
    """A clip's ground truth in words, for the visual report."""
    if true is None:
        return "(no ground truth)"
    motion = f", moving {true['direction']}" if true.get("direction") else ""
    return f"{true['colour']} {true['shape']}{motion}, on {true['background']}"
