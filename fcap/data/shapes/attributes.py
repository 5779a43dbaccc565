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

from fcap.data.shapes.render import BACKGROUNDS, COLOURS, DIRECTIONS, SHAPES

ATTRIBUTES = ("colour", "shape", "direction", "background")
# What one guess at random gets right, per attribute (uniform over the world's values;
# a background never equals the shape's colour, which changes chance little).
CHANCE = {"colour": 1 / len(COLOURS), "shape": 1 / len(SHAPES),
          "direction": 1 / len(DIRECTIONS), "background": 1 / len(BACKGROUNDS)}
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
