"""``attributes``: how often a caption names the shapes world's true colour, shape, direction, background.

CIDEr-D rewards n-grams; on the shapes world it cannot say *which* part of a
caption is right. This metric parses each caption
(:func:`fcap.data.shapes.attributes.parse`) and compares every attribute with
the ground truth, giving per-attribute accuracy (chance: 1/6 colour, 1/3
shape, 1/4 direction, 1/5 background), ``all_attributes``, the fraction of
captions with every attribute right, and ``direction_axis``, the fraction naming a
direction on the true axis of motion (chance 1/2; the frames-shuffled control keeps
the axis and loses the sign).

Ground truth, in order of precedence:

- ``truth``: ``{id: {colour, shape, direction, background}}`` handed to
  :func:`fcap.eval.score` (``score(..., truth=load_truth(world, "msrvtt"))``);
  the world's sidecar ``truth/clips.jsonl`` (:func:`load_truth`). ``caption_eval``
  passes it whenever its datasets root holds one (the tiny profile's world);
- otherwise the references themselves: every reference the shapes world writes
  names all four attributes of its clip (a test holds that they agree with the
  sidecar), so each attribute's truth is the value most references name.

An attribute that the truth leaves out (``direction`` of a still image) is not
scored. References that name no attribute are an error: the metric is for the
shapes world only.
"""
from __future__ import annotations

from collections import Counter
from typing import Mapping, Optional

from fcap.data.shapes.attributes import ATTRIBUTES, parse, tally
from fcap.data.shapes.truth import load_truth  # noqa: F401  (where scorers find the truth)
from registry import METRICS

ALL = "all_attributes"


def truth_from_references(references: Mapping[str, list[str]]) -> dict[str, dict]:
    """Each id's attributes as most of its references name them (None where none does)."""
    out = {}
    for key, refs in references.items():
        said = [parse(r) for r in refs]
        record = {}
        for attr in ATTRIBUTES:
            votes = Counter(s[attr] for s in said if s[attr] is not None)
            record[attr] = votes.most_common(1)[0][0] if votes else None
        out[key] = record
    return out


def accuracy(predictions: Mapping[str, str], truth: Mapping[str, Mapping]) -> dict[str, float]:
    """Per-attribute accuracy of ``predictions`` against ``truth`` over the ids of ``predictions``.

    Attributes whose truth is None are skipped for that id; ``all_attributes`` counts
    an id right when every attribute it has a truth for is right; ``direction_axis``
    (:data:`~fcap.data.shapes.attributes.AXIS`) counts a direction on the true axis.
    """
    missing = sorted(set(predictions) - set(truth))
    if missing:
        raise ValueError(f"attributes: {len(missing)} predicted ids have no ground truth "
                         f"(e.g. {missing[:3]})")
    counts = tally((caption, truth[key]) for key, caption in predictions.items())
    out = counts.rate(counts.right)
    if predictions:
        out[ALL] = counts.all_right / counts.captions
    return out


@METRICS.register("attributes")
def attributes(cfg, *, predictions, references, truth=None) -> dict[str, float]:
    """Shapes world: accuracy of the colour / shape / direction / background each caption names."""
    if truth is None:
        truth = truth_from_references(references)
        blind = sorted(k for k in predictions if truth[k]["shape"] is None)
        if blind:
            raise ValueError(f"attributes: the references of {len(blind)} ids (e.g. "
                             f"{blind[:3]}) name no shape of the shapes world; this metric "
                             "scores captions of the shapes world (fcap/data/shapes) only")
    return accuracy(predictions, truth)
