"""HowTo100M: narrated instructional videos, captioned by pseudolabels or by ASR (Sec. 3.1).

Layout under ``root``::

    <video_id>.mp4 | .webm | .mkv   the videos, directly in root
    pseudolabels.jsonl              captions: pseudolabel -- the merged file of the
                                    pseudolabel task, one JSON record per 8-s clip:
                                    {video_id, clip_index, start, end, frame_time, caption}
    caption.json                    captions: asr -- HowTo100M's own ASR captions,
                                    {video_id: {"start": [s], "end": [s], "text": [str]}}

ASR segments are short; as in the paper (footnote 4) consecutive segments are
concatenated into windows of about ``window_seconds`` (8 s), the window being
the clip. Videos named in the captions but absent from root are either
skipped and counted like unreadable files (``missing: skip``) or dropped at
start-up with one log line (``missing: drop``, for partial downloads). When the
pseudolabels are a merge's output whose ``index.json`` names another videos folder
than ``root`` (labels of one collection read over another), a warning says so.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Literal, Optional

from fcap.data.annotations import read_json, read_jsonl, require_keys
from fcap.data.errors import AnnotationError, DataError
from fcap.data.items import Item
from fcap.data.source import MapSource, Needed
from registry import DATA_SOURCES

EXTENSIONS = (".mp4", ".webm", ".mkv")
PSEUDOLABEL_KEYS = {"video_id": str, "clip_index": int, "start": (int, float),
                    "end": (int, float), "frame_time": (int, float), "caption": str}
ASR_FORMAT = '{video_id: {"start": [...], "end": [...], "text": [...]}}'


@dataclass(frozen=True)
class Howto100mConfig:
    root: Optional[str] = None  # dataset directory (layout in fcap/data/howto100m.py)
    captions: Literal["pseudolabel", "asr"] = "pseudolabel"  # paper: pseudolabel (Table 1)
    pseudolabels: Optional[str] = None  # default <root>/pseudolabels.jsonl
    caption_json: Optional[str] = None  # default <root>/caption.json
    window_seconds: float = 8.0  # ASR windows: concatenate segments up to this length (paper: 8)
    missing: Literal["skip", "drop"] = "skip"
    features: Optional[str] = None  # visual feature cache directory

    def __post_init__(self) -> None:
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds must be > 0, got {self.window_seconds}")


def read_pseudolabels(path: str) -> list[dict]:
    """Records of the pseudolabel task's merged JSONL (docs/CONTRACTS.md)."""
    out = []
    for number, record in read_jsonl(path, what="one pseudolabel record per line"):
        require_keys(path, f"line {number}", record, PSEUDOLABEL_KEYS)
        if record["end"] <= record["start"]:
            raise AnnotationError(path, f"line {number}: end {record['end']} <= start "
                                        f"{record['start']}")
        out.append(record)
    return out


def labelled_collection(path: str) -> str | None:
    """The videos folder the pseudolabel task captioned for the merged file ``path``, from the
    merge's ``index.json`` beside it (None: no such index, e.g. labels from elsewhere)."""
    index = os.path.join(os.path.dirname(path), "index.json")
    try:
        with open(index, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("pseudolabels") != os.path.basename(path):
        return None
    videos = (data.get("collection") or {}).get("videos")
    return videos if isinstance(videos, str) else None


def asr_path(cfg: Howto100mConfig, root: str, resolve) -> str:
    """The ASR file: ``caption_json`` (relative to ``datasets.root``), else root/caption.json."""
    return resolve(cfg.caption_json) or os.path.join(root, "caption.json")


def asr_windows(video_id: str, entry: dict, window_seconds: float,
                path: str = "caption.json") -> list[tuple[float, float, str]]:
    """Consecutive ASR segments joined into (start, end, text) windows of ~window_seconds."""
    require_keys(path, f"video {video_id!r}", entry, {"start": list, "end": list, "text": list})
    starts, ends, texts = entry["start"], entry["end"], entry["text"]
    if not len(starts) == len(ends) == len(texts):
        raise AnnotationError(path, f"video {video_id!r}: start, end and text have different "
                                    f"lengths ({len(starts)}, {len(ends)}, {len(texts)})")
    windows: list[tuple[float, float, str]] = []
    lo, hi, words = None, None, []
    for i, (s, e, t) in enumerate(zip(starts, ends, texts)):
        if not isinstance(t, str) or not t.strip():
            continue
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (s, e)):
            raise AnnotationError(path, f"video {video_id!r}: segment {i}: start/end must be "
                                        f"numbers (seconds), got {s!r}, {e!r}")
        if lo is None:
            lo = float(s)
        hi, words = max(float(e), hi or 0.0), words + [t.strip()]
        if hi - lo >= window_seconds:
            windows.append((lo, hi, " ".join(words)))
            lo, hi, words = None, None, []
    if words:
        windows.append((lo, hi, " ".join(words)))
    return windows


@DATA_SOURCES.register("howto100m", config=Howto100mConfig)
class Howto100m(MapSource):
    """HowTo100M clips with pseudolabel or concatenated-ASR captions."""

    name = "howto100m"
    modality = "video"
    splits = ("train",)

    @classmethod
    def needs(cls, cfg: Howto100mConfig, root: str, resolve) -> list[Needed]:
        # pseudolabels are the merge stage's output (a reference, not written yet): the
        # reader reports them when the stage starts
        if cfg.captions != "asr":
            return []
        return [Needed("caption_json", asr_path(cfg, root, resolve), False,
                       f"HowTo100M's ASR captions, {ASR_FORMAT}")]

    @classmethod
    def input_files(cls, cfg: Howto100mConfig, root: str, resolve) -> dict[str, str]:
        # the merged pseudolabels, made by a pseudolabel_howto100m run (or a merge stage,
        # whose reference is tracked as such): labelled again, they change what pretrains
        if cfg.captions != "pseudolabel":
            return {}
        return {"pseudolabels": resolve(cfg.pseudolabels) or os.path.join(root, "pseudolabels.jsonl")}

    def __init__(self, cfg: Howto100mConfig, *, env) -> None:
        super().__init__(cfg, env=env)
        self._root = self.root()
        self._videos = {os.path.splitext(e.name)[0]: e.path for e in os.scandir(self._root)
                        if e.name.lower().endswith(EXTENSIONS)}
        self._items = self._read_items()
        if not self._items:
            raise DataError(f"data source '{self.name}': no clips with captions under "
                            f"{self._root} (captions: {cfg.captions})")

    def _path(self, video_id: str) -> str:
        return self._videos.get(video_id) or os.path.join(self._root, f"{video_id}.mp4")

    def _read_items(self) -> list[Item]:
        cfg = self.cfg
        items = []
        if cfg.captions == "pseudolabel":
            path = self.env.resolve(cfg.pseudolabels) or os.path.join(self._root,
                                                                      "pseudolabels.jsonl")
            labelled = labelled_collection(path)
            if labelled and os.path.realpath(labelled) != os.path.realpath(self._root):
                self.env.logger.warning(
                    "data source howto100m: the pseudolabels %s caption the videos of %s (its "
                    "index.json) but this source reads %s; unless those are the same videos "
                    "copied, a clip whose video is not here is %s (missing: %s) and one whose "
                    "id names another video gets that video's caption wrong", path, labelled,
                    self._root, "skipped" if cfg.missing == "skip" else "dropped", cfg.missing)
            for r in read_pseudolabels(path):
                vid, s, e = r["video_id"], float(r["start"]), float(r["end"])
                items.append(Item(f"{vid}#{r['clip_index']}", self._path(vid), "video",
                                  (r["caption"].strip(),), f"{vid}@{s:.3f}-{e:.3f}", s, e))
        else:
            path = asr_path(cfg, self._root, self.env.resolve)
            data = read_json(path, what=ASR_FORMAT)
            if not isinstance(data, dict):
                raise AnnotationError(path, f"expected a JSON object {ASR_FORMAT}, got "
                                            f"{type(data).__name__}")
            for vid in sorted(data):
                for k, (s, e, text) in enumerate(asr_windows(vid, data[vid], cfg.window_seconds,
                                                              path)):
                    items.append(Item(f"{vid}#asr{k}", self._path(vid), "video", (text,),
                                      f"{vid}@{s:.3f}-{e:.3f}", s, e))
        if cfg.missing == "drop":
            kept = [i for i in items if os.path.exists(i.path)]
            if len(kept) < len(items):
                absent = sorted({i.path for i in items} - {i.path for i in kept})
                self.env.logger.warning("data source howto100m: dropped %d clips of %d videos "
                                        "absent from %s (missing: drop), e.g. %s",
                                        len(items) - len(kept), len(absent), self._root,
                                        absent[0])
            items = kept
        return items

    def items(self, split: str, *, train: bool) -> list[Item]:
        return list(self._items)
