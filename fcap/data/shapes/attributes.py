"""What a caption of the shapes world says: its colour, shape, direction and background.

The world's captions (and anything a model trained on them writes) name the
shape's colour just before the shape, the direction after it, and the
background as a colour word after it (``... on a blue background``, ``... on
blue``). :func:`parse` reads those four attributes back from free text, so
generated captions can be scored against the world's ground truth
(``truth/clips.jsonl``; metric ``attributes``) whatever template they follow.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from fcap.data.shapes.render import BACKGROUNDS, COLOURS, DIRECTIONS, SHAPES

ATTRIBUTES = ("colour", "shape", "direction", "background")
# What one guess at random gets right, per attribute (uniform over the world's values;
# a background never equals the shape's colour, which changes chance little).
CHANCE = {"colour": 1 / len(COLOURS), "shape": 1 / len(SHAPES),
          "direction": 1 / len(DIRECTIONS), "background": 1 / len(BACKGROUNDS)}
# Whether a caption names a direction on the true axis of motion (left/right: horizontal,
# up/down: vertical), right sign or not; chance 0.5. With a clip's frames shuffled the set
# of positions still shows the axis, so ``direction`` can only fall to ~0.5 (axis right,
# sign guessed); the sign alone comes from the frames' order.
AXIS = "direction_axis"
AXES = {d: "horizontal" if dx else "vertical" for d, (dx, _) in DIRECTIONS.items()}
_WORD = re.compile(r"[a-z]+")


def parse(caption: str) -> dict[str, str | None]:
    """``{colour, shape, direction, background}`` named by ``caption``; None where it names none.

    The first shape word anchors the parse: the colour is the last colour word
    before it, the direction the first direction word after it, the background
    the last background-colour word after it (``moves left on a blue
    background``). Without a shape word, only a colour word followed by
    ``background`` counts, as the background.
    """
    words = _WORD.findall(caption.lower())
    out: dict[str, str | None] = dict.fromkeys(ATTRIBUTES)
    anchor = next((i for i, w in enumerate(words) if w in SHAPES), None)
    if anchor is None:
        for i, w in enumerate(words[:-1]):
            if w in BACKGROUNDS and words[i + 1] == "background":
                out["background"] = w
        return out
    out["shape"] = words[anchor]
    out["colour"] = next((w for w in reversed(words[:anchor]) if w in COLOURS), None)
    after = words[anchor + 1:]
    out["direction"] = next((w for w in after if w in DIRECTIONS), None)
    out["background"] = next((w for w in reversed(after) if w in BACKGROUNDS), None)
    return out


def matches(caption: str, truth: dict, attributes=ATTRIBUTES) -> dict[str, bool]:
    """For each attribute, whether ``caption`` names the true value."""
    said = parse(caption)
    return {a: said[a] is not None and said[a] == truth[a] for a in attributes}


@dataclass
class Tally:
    """Counts of :func:`tally`: per attribute (and :data:`AXIS`) how many captions were
    scored (the truth has a value), named a value, and named the true one."""

    scored: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*ATTRIBUTES, AXIS), 0))
    named: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*ATTRIBUTES, AXIS), 0))
    right: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*ATTRIBUTES, AXIS), 0))
    all_right: int = 0  # captions with every scored attribute right (not counting AXIS)
    captions: int = 0

    def rate(self, counts: dict[str, int]) -> dict[str, float]:
        """``counts / scored`` for every attribute that was scored at all."""
        return {a: counts[a] / self.scored[a] for a in self.scored if self.scored[a]}


def tally(pairs: Iterable[tuple[str, Mapping]]) -> Tally:
    """Count ``(caption, truth)`` pairs; an attribute whose truth is None (``direction`` of a
    still image) is not scored for that pair."""
    out = Tally()
    for caption, true in pairs:
        said, ok = parse(caption), True
        for attr in ATTRIBUTES:
            if true.get(attr) is None:
                continue
            out.scored[attr] += 1
            out.named[attr] += said[attr] is not None
            hit = said[attr] == true[attr]
            out.right[attr] += hit
            ok &= hit
        if true.get("direction") is not None:
            out.scored[AXIS] += 1
            out.named[AXIS] += said["direction"] is not None
            out.right[AXIS] += AXES.get(said["direction"]) == AXES[true["direction"]]
        out.all_right += ok
        out.captions += 1
    return out
