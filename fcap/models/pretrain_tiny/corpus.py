"""The tiny LM's pretraining corpus: caption-style English, never an evaluation reference.

The real OPT read the web, never MSR-VTT's references verbatim. The tiny
analogue reads sentences drawn from a small grammar of captions (coloured
shapes moving over backgrounds, everyday scenes) whose words and phrases cover
the shapes world's captions, and every sentence that one of the world's video
templates (``render.VIDEO_TEMPLATES``: the MSR-VTT / MSVD references) could
produce is removed, for every colour, shape, direction and background. So the
LM knows the language of the references, never a reference.
"""
from __future__ import annotations

import itertools

import numpy as np

from fcap.data.shapes import render
from fcap.models import tiny

COLOURS = sorted(set(tiny.COLOURS) | set(render.COLOURS) | set(render.BACKGROUNDS))
SHAPES = sorted(set(tiny.SHAPES) | set(render.SHAPES))
DIRECTIONS = sorted(set(tiny.DIRECTIONS) | set(render.DIRECTIONS))
SUBJECTS = ("a {c} {s}", "the {c} {s}", "a small {c} {s}", "a big {c} {s}", "one {c} {s}",
            "a {s}", "the {s}")
MOTIONS = ("moves", "is moving", "slides", "is sliding", "goes", "travels", "drifts", "glides",
           "rolls", "floats", "moved", "is going", "slowly moves", "quickly slides")
WAYS = ("{d}", "{d}", "to the {d}", "towards the {d}")
PLACES = ("", "on a {b} background", "over a {b} background", "across a {b} background",
          "against a {b} background", "in front of a {b} background", "on a {b} table",
          "over the {b} floor", "across the screen", "on a {b} wall", "in the video")
STILLS = ("a {c} {s} on a {b} background", "there is a {c} {s} on a {b} background",
          "a {b} background with a {c} {s}", "the {s} is {c}", "a picture of a {c} {s}",
          "a {c} {s} in the middle of a {b} background", "a close view of a {c} {s}")


def references() -> set[str]:
    """Every sentence the shapes world can use as a video reference (MSR-VTT / MSVD layouts)."""
    return render.video_captions()


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _motion(rng: np.random.Generator) -> str:
    way = _pick(rng, WAYS)
    direction = _pick(rng, DIRECTIONS)
    if way != "{d}" and direction not in ("left", "right"):
        way = "{d}"  # "to the up" is not English
    parts = [_pick(rng, SUBJECTS), _pick(rng, MOTIONS), way, _pick(rng, PLACES)]
    return " ".join(p for p in parts if p).format(c=_pick(rng, COLOURS), s=_pick(rng, SHAPES),
                                                  d=direction, b=_pick(rng, COLOURS))


def _still(rng: np.random.Generator) -> str:
    return _pick(rng, STILLS).format(c=_pick(rng, COLOURS), s=_pick(rng, SHAPES),
                                     b=_pick(rng, COLOURS))


def sentences(n: int, *, seed: int) -> list[str]:
    """``n`` distinct sentences (fewer if the grammar runs dry), none of them a reference.

    Mostly moving shapes, then still ones and everyday scenes (``tiny.corpus``'s
    grammar), in a seeded order.
    """
    rng = np.random.default_rng(seed)
    banned = references()
    everyday = [f"{s} {a} {p}" for s, a, p in itertools.product(tiny.SUBJECTS, tiny.ACTIONS,
                                                                 tiny.PLACES)]
    seen: set[str] = set()
    out: list[str] = []
    for _ in range(n * 4):
        if len(out) >= n:
            break
        r = rng.random()
        line = _motion(rng) if r < 0.7 else _still(rng) if r < 0.85 else _pick(rng, everyday)
        if line in banned or line in seen:
            continue
        seen.add(line)
        out.append(line)
    return out
