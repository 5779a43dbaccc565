"""Decoded clips kept in memory: ``datasets.clip_memory_mb``.

Fine-tuning sets are small (MSR-VTT 10K videos, MSVD 2K, the tiny world's
1.7K) and training reads every clip again each epoch. Opening, seeking and
decoding a clip again costs the same every time (about 4 ms for 4 frames of
a 32-px clip on one core: more than the tiny model's training step). A map
loader given a budget keeps the decoded frames of the clips it read (least
recently used out first) and hands back the same frames when a clip comes
again: the frames are those decord gave the first time, so the batches are
the same as without it.

The memory belongs to one loader in the process that decodes: with DataLoader
workers each worker keeps its own, and workers start afresh every epoch, so
across epochs it pays with ``num_workers: 0`` (the tiny profile); within an
epoch a worker still decodes a video once for all of its captions (MSR-VTT: 20)
that reach it. Each item says whether it was reused, and the loader counts them
from the batches, workers or not. A file whose size or modification time changed
is decoded again. Unreadable files are never kept: each read of one raises (and
is counted as a skip) as without the memory.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Callable, Hashable

from fcap.data.media import Clip

MB = 2 ** 20


class ClipMemory:
    """Up to ``megabytes`` of decoded clips, least recently used out first."""

    def __init__(self, megabytes: int) -> None:
        if megabytes < 0:
            raise ValueError(f"clip_memory_mb must be >= 0, got {megabytes}")
        self.budget = int(megabytes * MB)
        self.used = 0
        self.clips: OrderedDict[Hashable, Clip] = OrderedDict()
        self.decoded = self.reused = self.evicted = 0

    def read(self, path: str, window: tuple, decode: Callable[[], Clip]) -> tuple[Clip, bool]:
        """(the clip of ``path`` for ``window`` (the read's other arguments), reused?): kept,
        or ``decode()`` (whose errors propagate, nothing kept)."""
        try:
            st = os.stat(path)
        except OSError:
            return decode(), False  # it raises the reader's own error (missing, ...)
        key = (path, st.st_size, st.st_mtime_ns, window)
        clip = self.clips.get(key)
        if clip is not None:
            self.clips.move_to_end(key)
            self.reused += 1
            return clip, True
        clip = decode()
        self.decoded += 1
        size = clip.frames.nbytes
        if size > self.budget:
            return clip, False
        clip.frames.setflags(write=False)  # shared by every later read
        self.clips[key] = clip
        self.used += size
        while self.used > self.budget:
            _, old = self.clips.popitem(last=False)
            self.used -= old.frames.nbytes
            self.evicted += 1
        return clip, False

    def stats(self) -> dict:
        """``{decoded, reused, evicted, kept_mb}`` so far (this process)."""
        return {"decoded": self.decoded, "reused": self.reused, "evicted": self.evicted,
                "kept_mb": round(self.used / MB, 1)}
