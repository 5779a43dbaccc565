"""MSVD (YouTube2Text): 1,970 short YouTube clips with ~40 English captions each.

Layout under ``root``::

    YouTubeClips/<name>.avi          e.g. -4wsuPCjDBc_5_15.avi
    AllVideoDescriptions.txt         '<name> <caption>' per line ('#' lines: header)
    youtube_mapping.txt              '<name> vid<N>' per line
    train_list.txt, val_list.txt,    optional: '<name>' per line, the clips of each split
    test_list.txt                    (as CLIP4Clip's msvd_data ships them)

Standard split by vid number: vid1-1200 train, vid1201-1300 val,
vid1301-1970 test. A split whose list file (``split_list``) exists under the
root holds exactly the clips it names instead: the three lists come together
(some without the others is refused: clips could fall in two splits), every
list names described clips, and no clip is in two lists. Training yields one item per caption;
evaluation one item per clip with all its references.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal, Optional

from fcap.data.annotations import read_lines
from fcap.data.errors import AnnotationError
from fcap.data.items import Item
from fcap.data.source import MapSource, Needed
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
    # per-split lists of clip names, relative to root ('{split}' is the split name): used
    # when all three exist, else the standard split by vid number; null: always by number
    split_list: Optional[str] = "{split}_list.txt"

    def __post_init__(self) -> None:
        if self.split_list is not None and "{split}" not in self.split_list:
            raise ValueError(f"split_list must contain '{{split}}' (one file per split, e.g. "
                             f"'{{split}}_list.txt') or be null, got {self.split_list!r}")


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


def read_split_lists(root: str, pattern: Optional[str], described: set[str]) -> dict[str, set[str]]:
    """``{split: clip names}`` from the split list files (``pattern``) under ``root``; ``{}``
    when there are none (the split is then by vid number)."""
    paths = {split: os.path.join(root, pattern.replace("{split}", split))
             for split in SPLIT_RANGES} if pattern else {}
    found = {split: path for split, path in paths.items() if os.path.isfile(path)}
    if not found:
        return {}
    if len(found) < len(paths):
        missing = [os.path.basename(p) for s, p in paths.items() if s not in found]
        raise AnnotationError(next(iter(found.values())),
                              f"found beside it no {', '.join(missing)}: split lists come as "
                              "all three (train, val, test) or none (the split is then by vid "
                              "number); key 'split_list' = null ignores them")
    lists: dict[str, set[str]] = {}
    seen: dict[str, str] = {}  # clip name -> the list file that named it first
    for split, path in found.items():
        names: set[str] = set()
        for number, line in read_lines(path, what="'<clip name>' per line"):
            if line not in described:
                raise AnnotationError(path, f"line {number}: clip {line!r:.80} is not described "
                                            "in the descriptions file")
            if line in seen:
                where = "listed twice" if line in names else f"also in {seen[line]}"
                raise AnnotationError(path, f"line {number}: clip {line!r:.80} is {where} "
                                            "(a clip belongs to one split, once)")
            seen[line] = os.path.basename(path)
            names.add(line)
        lists[split] = names
    return lists


@DATA_SOURCES.register("msvd", config=MsvdConfig)
class Msvd(MapSource):
    """MSVD clips and captions, split by vid number or by the split's list file."""

    name = "msvd"
    modality = "video"
    splits = ("train", "val", "test")

    @classmethod
    def needs(cls, cfg: MsvdConfig, root: str, resolve) -> list[Needed]:
        return [Needed("descriptions", os.path.join(root, cfg.descriptions), False,
                       "MSVD's captions, '<clip name> <caption>' per line"),
                Needed("mapping", os.path.join(root, cfg.mapping), False,
                       "MSVD's clip numbers, '<clip name> vid<N>' per line"),
                Needed("videos", os.path.join(root, cfg.videos), True,
                       "MSVD's clips, <clip name>.avi")]

    @classmethod
    def read_annotations(cls, cfg: MsvdConfig, root: str) -> tuple:
        """(vid numbers, captions, split lists) of the clips, read and cross-checked."""
        mapping_path = os.path.join(root, cfg.mapping)
        vid = read_mapping(mapping_path)
        captions = read_descriptions(os.path.join(root, cfg.descriptions))
        unmapped = sorted(set(captions) - set(vid))
        if unmapped:
            raise AnnotationError(mapping_path, f"{len(unmapped)} clip(s) described in "
                                                f"{cfg.descriptions} have no vid number "
                                                f"(first: {', '.join(unmapped[:5])})")
        return vid, captions, read_split_lists(root, cfg.split_list, set(captions))

    def __init__(self, cfg: MsvdConfig, *, env) -> None:
        super().__init__(cfg, env=env)
        self._root = self.root()
        self._vid, self._captions, self._lists = self.read_annotations(cfg, self._root)

    def items(self, split: str, *, train: bool) -> list[Item]:
        lo, hi = SPLIT_RANGES[split]
        listed = self._lists.get(split)
        folder = os.path.join(self._root, self.cfg.videos)
        out = []
        for name, vid in sorted(self._vid.items(), key=lambda kv: kv[1]):
            caps = self._captions.get(name)
            inside = name in listed if listed is not None else lo <= vid <= hi
            if not inside or not caps:
                continue
            path = os.path.join(folder, f"{name}.avi")
            if train:
                out += [Item(f"vid{vid}#{k}", path, "video", (c,), name)
                        for k, c in enumerate(caps)]
            else:
                out.append(Item(f"vid{vid}", path, "video", tuple(caps), name))
        how = (self.cfg.split_list.replace("{split}", split) if listed is not None
               else f"vid{lo}-{hi}")
        self.env.logger.info("data source msvd: split %s = %d clips (%s)", split,
                             len({i.media_key for i in out}), how)
        return out
