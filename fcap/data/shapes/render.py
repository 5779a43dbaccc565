"""Drawing the synthetic shapes world: coloured shapes moving over a plain background.

Captions are fully determined by the content, so a model that learns them has
learned to see colour, shape and -- the hard part -- motion direction.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

COLOURS = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (40, 60, 220),
           "yellow": (235, 220, 40), "white": (245, 245, 245), "purple": (150, 40, 190)}
BACKGROUNDS = {"black": (10, 10, 10), "gray": (120, 120, 120), "blue": (20, 30, 110),
               "green": (20, 90, 30), "brown": (110, 70, 30)}
SHAPES = ("square", "circle", "triangle")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
# half the side of a shape, as a fraction of the frame: 0.2 of 32 px is a 13-px shape, more
# than one of the tiny encoders' 8-px patches (at 1/7, 9 px, the encoder's shape probe stopped
# at 0.86). Clips and images draw the same size.
RADIUS = 0.2
# bump when what a scene looks like changes: the world's digest and the pretrained tiny
# models' cache keys hold it. 1: radius 1/7 of the frame in clips, 1/6 in images; 2: RADIUS.
DRAWING = 2

VIDEO_TEMPLATES = ("a {colour} {shape} moves {direction} on a {background} background",
                   "a {colour} {shape} is moving {direction} over a {background} background",
                   "the {colour} {shape} slides {direction} across a {background} background")
IMAGE_TEMPLATES = ("a {colour} {shape} on a {background} background",
                   "a picture of a {colour} {shape} on {background}")
CHIT_CHAT = ("hey guys welcome back to my channel", "don't forget to like and subscribe",
             "so um yeah let's get started", "thanks for watching see you next time",
             "okay so this one is really cool", "i got this at the store last week",
             "let me know in the comments what you think", "alright where was i")
ASR_CONTENT = ("now the {colour} {shape} goes {direction}", "you can see the {shape} is {colour}",
               "watch it move {direction} here", "that's a {background} background by the way")


@dataclass(frozen=True)
class Scene:
    """What a clip or image shows; every caption derives from it."""

    shape: str
    colour: str
    background: str
    direction: str
    x: float  # start position of the shape's centre, fraction of the frame
    y: float

    def caption(self, template: str) -> str:
        return template.format(shape=self.shape, colour=self.colour,
                               background=self.background, direction=self.direction)


def video_captions() -> set[str]:
    """Every caption the world can write for a video (the MSR-VTT / MSVD references)."""
    return {t.format(colour=c, shape=s, direction=d, background=b) for t in VIDEO_TEMPLATES
            for c in COLOURS for s in SHAPES for d in DIRECTIONS for b in BACKGROUNDS}


def random_scene(rng: np.random.Generator) -> Scene:
    colour = str(rng.choice(list(COLOURS)))
    background = str(rng.choice([b for b in BACKGROUNDS if b != colour]))
    return Scene(str(rng.choice(SHAPES)), colour, background, str(rng.choice(list(DIRECTIONS))),
                 float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7)))


@lru_cache(maxsize=8)
def _pixel_centres(h: int, w: int) -> np.ndarray:
    """(2, h, w) float32 row and column of every pixel's centre, shared (read-only)."""
    grid = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    grid.flags.writeable = False
    return grid


def _draw(frame: np.ndarray, shape: str, cx: float, cy: float, r: float, rgb) -> None:
    yy, xx = _pixel_centres(*frame.shape[:2])
    dx, dy = xx - cx, yy - cy
    if shape == "square":
        mask = (np.abs(dx) <= r) & (np.abs(dy) <= r)
    elif shape == "circle":
        mask = dx * dx + dy * dy <= r * r
    else:  # triangle pointing up
        mask = (dy <= r) & (dy >= -r) & (np.abs(dx) <= (dy + r) / 2)
    frame[mask] = rgb


def render_clip(scene: Scene, *, size: int, frames: int, travel: float = 0.45,
                indices=None) -> np.ndarray:
    """(frames, size, size, 3) uint8: the shape crosses ``travel`` of the frame. ``indices``
    (frame numbers < ``frames``) draws only those frames, the same pixels as
    ``render_clip(...)[indices]`` without drawing the others."""
    dx, dy = DIRECTIONS[scene.direction]
    r = size * RADIUS
    # Along the motion axis the path is centred, moved by at most ``slack`` (the start
    # position, 0.3-0.7, scaled): the shape never touches the frame's edge. (A shape cut
    # by the edge made libx264's output differ from one encode to the next.)
    slack = max(0.0, (1 - 2 * RADIUS - travel) / 2 - 0.02)
    x0 = (0.5 + (scene.x - 0.5) / 0.2 * slack if dx else scene.x) - dx * travel / 2
    y0 = (0.5 + (scene.y - 0.5) / 0.2 * slack if dy else scene.y) - dy * travel / 2
    indices = range(frames) if indices is None else [int(i) for i in indices]
    if any(not 0 <= i < frames for i in indices):
        raise ValueError(f"indices: frame numbers in 0..{frames - 1}, got {list(indices)}")
    out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
    for k, i in enumerate(indices):
        f = i / max(frames - 1, 1)
        out[k] = BACKGROUNDS[scene.background]
        _draw(out[k], scene.shape, (x0 + dx * travel * f) * size, (y0 + dy * travel * f) * size,
              r, COLOURS[scene.colour])
    return out


def render_image(scene: Scene, *, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the shape at rest."""
    out = np.empty((size, size, 3), dtype=np.uint8)
    out[:] = BACKGROUNDS[scene.background]
    _draw(out, scene.shape, scene.x * size, scene.y * size, size * RADIUS, COLOURS[scene.colour])
    return out
