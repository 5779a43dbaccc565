"""MSR-VTT: 10,000 web videos with 20 captions each (fine-tuning and evaluation).

Layout under ``root`` (the official release)::

    videos/all/video0.mp4 ... video9999.mp4
    train_val_videodatainfo.json    videos[] {video_id, split: train|validate}, sentences[]
    test_videodatainfo.json         videos[] {video_id, split: test}, sentences[]

``sentences[]`` holds ``{video_id, caption}``. Splits (by each video's
``split`` field): train 6513 / val 497 / test 2990 videos. Training yields
one item per caption; evaluation one item per video with all its references.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, Optional

from fcap.data.annotations import read_json, require_keys
from fcap.data.errors import AnnotationError
from fcap.data.items import Item
from fcap.data.source import MapSource, Needed
from registry import DATA_SOURCES

FILES = {"train": "train_val_videodatainfo.json", "val": "train_val_videodatainfo.json",
         "test": "test_videodatainfo.json"}
OFFICIAL_SPLIT = {"train": "train", "val": "validate", "test": "test"}
FORMAT = ("the official MSR-VTT format: {videos: [{video_id, split}], "
          "sentences: [{video_id, caption}]}")


@dataclass(frozen=True)
class MsrvttConfig:
    root: Optional[str] = None  # dataset directory (layout in fcap/data/msrvtt.py)
    split: Literal["train", "val", "test"] = "train"
    videos: str = "videos/all"  # folder of videoN.mp4, relative to root
    features: Optional[str] = None  # visual feature cache directory (fcap/data/features.py)


def read_msrvtt(path: str, split: str) -> dict[str, list[str]]:
    """``{video_id: [caption, ...]}`` of the videos of ``split`` in one info file."""
    data = read_json(path, what=FORMAT)
    if not isinstance(data, dict):
        raise AnnotationError(path, f"expected a JSON object, got {type(data).__name__}; {FORMAT}")
    for key in ("videos", "sentences"):
        if not isinstance(data.get(key), list):
            raise AnnotationError(path, f"missing list '{key}'; expected {FORMAT}")
    wanted = OFFICIAL_SPLIT[split]
    captions: dict[str, list[str]] = {}
    for i, video in enumerate(data["videos"]):
        require_keys(path, f"videos[{i}]", video, {"video_id": str, "split": str})
        if video["split"] == wanted:
            captions[video["video_id"]] = []
    for i, sentence in enumerate(data["sentences"]):
        require_keys(path, f"sentences[{i}]", sentence, {"video_id": str, "caption": str})
        if sentence["video_id"] in captions:
            captions[sentence["video_id"]].append(sentence["caption"].strip())
    bare = [v for v, c in captions.items() if not c]
    if bare:
        raise AnnotationError(path, f"{len(bare)} {split} video(s) have no sentences "
                                    f"(first: {', '.join(bare[:5])})")
    return captions


@DATA_SOURCES.register("msrvtt", config=MsrvttConfig)
class Msrvtt(MapSource):
    """MSR-VTT videos and captions (one item per caption in training)."""

    name = "msrvtt"
    modality = "video"
    splits = ("train", "val", "test")

    @classmethod
    def needs(cls, cfg: MsrvttConfig, root: str, resolve) -> list[Needed]:
        splits = " and ".join(s for s, name in FILES.items() if name == FILES[cfg.split])
        return [Needed("split", os.path.join(root, FILES[cfg.split]), False,
                       f"MSR-VTT's {splits} annotations, {FORMAT}"),
                Needed("videos", os.path.join(root, cfg.videos), True,
                       "MSR-VTT's videos, videoN.mp4; the official zips unpack to "
                       "TrainValVideo/ and TestVideo/: link both into videos/all, or set the "
                       "source's videos: to the split's folder")]

    @classmethod
    def read_annotations(cls, cfg: MsrvttConfig, root: str) -> None:
        read_msrvtt(os.path.join(root, FILES[cfg.split]), cfg.split)

    def __init__(self, cfg: MsrvttConfig, *, env) -> None:
        super().__init__(cfg, env=env)
        self._root = self.root()
        self._captions: dict[str, dict[str, list[str]]] = {}
        self.captions(cfg.split)  # a bad annotation file fails at start-up

    def captions(self, split: str) -> dict[str, list[str]]:
        if split not in self._captions:
            self._captions[split] = read_msrvtt(os.path.join(self._root, FILES[split]), split)
        return self._captions[split]

    def items(self, split: str, *, train: bool) -> list[Item]:
        folder = os.path.join(self._root, self.cfg.videos)
        out = []
        for vid, caps in self.captions(split).items():
            path = os.path.join(folder, f"{vid}.mp4")
            if train:
                out += [Item(f"{vid}#{k}", path, "video", (c,), vid) for k, c in enumerate(caps)]
            else:
                out.append(Item(vid, path, "video", tuple(caps), vid))
        return out
