"""Decode only the frames to caption, in DataLoader workers (Sec. 3.1).

Decoding one frame per 8-second clip instead of the clip is what makes
labelling HowTo100M affordable. For each video the frames of all its pending
clips are fetched together (``fcap.data.media.read_frames``: one decord
``get_batch``, which seeks to the nearest keyframe per frame), already resized
to ``frame_size x frame_size`` by the reader (``fcap.data.media.open_video``).

A video that cannot be labelled becomes a failure whose reason names the cause
(fcap.data.media: ``empty``, ``not a video container``, ``truncated: 3 of 795
frames``, ...): never a silent zero clips.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from fcap.data.errors import MediaError
from fcap.data.media import open_video, read_frames
from fcap.pseudolabel.clips import Clip, plan_clips
from fcap.pseudolabel.config import ClipConfig

ERROR_CHARS = 500  # decord errors carry whole C++ backtraces; keep the head


def describe_error(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS] + " ..."


class VideoFrames(IterableDataset):
    """Yields one item per video, in the order given, across workers.

    Worker ``w`` of ``n`` decodes videos ``w, w + n, ...``; the DataLoader takes
    items from workers in turn, so the main process sees the input order.
    Item: ``video_id``, ``path``, ``num_clips`` (all clips of the video, >= 1
    unless it failed), ``clips`` (the pending ones), ``frames`` (uint8
    ``(f, H, W, 3)``, the pending clips' frames in clip then frame order),
    ``decode_s`` and ``error`` (``None`` or why the video cannot be labelled,
    ``KIND: detail``: then ``clips`` is empty).
    """

    def __init__(self, videos: list[tuple[str, Path | None]], *, clips: ClipConfig, frame_size: int,
                 seed: int, done: dict[str, set[int]] | None = None) -> None:
        self.videos = videos
        self.clips = clips
        self.frame_size = frame_size
        self.seed = seed
        self.done = done or {}

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        wid, n = (info.id, info.num_workers) if info is not None else (0, 1)
        for i in range(wid, len(self.videos), n):
            yield self.load(*self.videos[i])

    def load(self, video_id: str, path: Path | None) -> dict:
        t0 = time.perf_counter()
        item = {"video_id": video_id, "path": None if path is None else str(path), "num_clips": 0,
                "clips": [], "error": None,
                "frames": torch.zeros((0, self.frame_size, self.frame_size, 3), dtype=torch.uint8)}
        try:
            if path is None:
                raise MediaError(video_id, "missing: no file for this id in the videos folder")
            vr = open_video(path, self.frame_size)  # one thread: parallelism comes from workers
            num_frames, fps = len(vr), vr.get_avg_fps()
            if not fps > 0:
                raise MediaError(path, f"unreadable: the stream gives no frame rate ({fps} fps)")
            keys = list(vr.get_key_indices()) if self.clips.keyframe_window > 0 else []
            all_clips = plan_clips(num_frames, fps, self.clips, seed=self.seed, video_id=video_id,
                                   keyframes=keys)
            if not all_clips:  # only clips.last: drop gives none; a video is labelled or a failure
                raise MediaError(path, f"too short: {num_frames / fps:.2f} s is shorter than one "
                                       f"clip (clips.seconds {self.clips.seconds}) and clips.last "
                                       f"is {self.clips.last!r}")
            done = self.done.get(video_id, set())
            pending: list[Clip] = [c for c in all_clips if c.index not in done]
            item["num_clips"] = len(all_clips)
            if pending:
                frames = read_frames(vr, [i for c in pending for i in c.frame_indices],
                                     path=str(path))
                item["frames"] = torch.from_numpy(np.ascontiguousarray(frames))
            item["clips"] = pending
        except MediaError as err:  # any unreadable video is reported, never fatal
            item.update(num_clips=0, clips=[], error=err.reason)
        except Exception as err:  # an unforeseen cause: still a failure, with decord's words
            item.update(num_clips=0, clips=[], error=f"unreadable: {describe_error(err)}")
        item["decode_s"] = time.perf_counter() - t0
        return item
