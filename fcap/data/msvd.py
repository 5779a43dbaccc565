"""MSVD (YouTube2Text): 1,970 short YouTube clips with ~40 English captions each.

Layout under ``root``::

    YouTubeClips/<name>.avi          e.g. -4wsuPCjDBc_5_15.avi
    AllVideoDescriptions.txt         '<name> <caption>' per line ('#' lines: header)
    youtube_mapping.txt              '<name> vid<N>' per line

Standard split by vid number: vid1-1200 train, vid1201-1300 val,
vid1301-1970 test. Training yields one item per caption; evaluation one
item per clip with all its references.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal, Optional

from fcap.data.annotations import read_lines
from fcap.data.errors import AnnotationError
from fcap.data.items import Item
from fcap.data.source import MapSource
from registry import DATA_SOURCES

SPLIT_RANGES = {"train": (1, 1200), "val": (1201, 1300), "test": (1301, 1970)}
_VID = re.compile(r"^vid(\d+)$")


@dataclass(frozen=True)
class MsvdConfig:
    root: Optional[str] = None  # dataset directory (layout in fcap/data/msvd.py)
    split: Literal["train", "val", "test"] = "train"
    videos: str = "YouTubeClips"  # folder of <name>.avi, relative to root
    descriptions: str = "AllVideoDescriptions.txt"
    mapping: str = "youtube_mapping.txt"
    features: Optional[str] = None  # visual feature cache directory


def read_mapping(path: str) -> dict[str, int]:
    """``{clip name: vid number}`` from youtube_mapping.txt."""
    out: dict[str, int] = {}
    for number, line in read_lines(path, what="'<clip name> vid<N>' per line"):
        parts = line.split()
        match = _VID.match(parts[-1]) if len(parts) == 2 else None
        if match is None:
            raise AnnotationError(path, f"line {number}: expected '<clip name> vid<N>', "
                                        f"got {line!r:.80}")
        out[parts[0]] = int(match.group(1))
    if not out:
        raise AnnotationError(path, "no '<clip name> vid<N>' lines")
    return out


def read_descriptions(path: str) -> dict[str, list[str]]:
    """``{clip name: [caption, ...]}`` from AllVideoDescriptions.txt."""
    out: dict[str, list[str]] = {}
    for number, line in read_lines(path, what="'<clip name> <caption>' per line"):
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise AnnotationError(path, f"line {number}: expected '<clip name> <caption>', "
                                        f"got {line!r:.80}")
        out.setdefault(parts[0], []).append(parts[1].strip())
    if not out:
        raise AnnotationError(path, "no '<clip name> <caption>' lines")
    return out


@DATA_SOURCES.register("msvd", config=MsvdConfig)
class Msvd(MapSource):
    """MSVD clips and captions, split by vid number."""

    name = "msvd"
    modality = "video"
    splits = ("train", "val", "test")

    def __init__(self, cfg: MsvdConfig, *, env) -> None:
        super().__init__(cfg, env=env)
        self._root = self.root()
        mapping_path = os.path.join(self._root, cfg.mapping)
        self._vid = read_mapping(mapping_path)
        self._captions = read_descriptions(os.path.join(self._root, cfg.descriptions))
        unmapped = sorted(set(self._captions) - set(self._vid))
        if unmapped:
            raise AnnotationError(mapping_path, f"{len(unmapped)} clip(s) described in "
                                                f"{cfg.descriptions} have no vid number "
                                                f"(first: {', '.join(unmapped[:5])})")

    def items(self, split: str, *, train: bool) -> list[Item]:
        lo, hi = SPLIT_RANGES[split]
        folder = os.path.join(self._root, self.cfg.videos)
        out = []
        for name, vid in sorted(self._vid.items(), key=lambda kv: kv[1]):
            caps = self._captions.get(name)
            if not (lo <= vid <= hi) or not caps:
                continue
            path = os.path.join(folder, f"{name}.avi")
            if train:
                out += [Item(f"vid{vid}#{k}", path, "video", (c,), name)
                        for k, c in enumerate(caps)]
            else:
                out.append(Item(f"vid{vid}", path, "video", tuple(caps), name))
        return out
