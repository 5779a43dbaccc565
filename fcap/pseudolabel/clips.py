"""Cut a video into fixed-length clips and pick the frames to caption (Sec. 3.1).

Pure functions of (frame count, fps, options, seed, video id): the planner runs
in decode workers, in resume and again in ``merge`` to check that every clip
was labelled, and all must agree.
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Sequence

from fcap.pseudolabel.config import ClipConfig


@dataclass(frozen=True)
class Clip:
    """One clip: ``[start, end)`` seconds and the frames to caption (indices and times)."""

    index: int
    start: float
    end: float
    frame_indices: tuple[int, ...]
    frame_times: tuple[float, ...]  # seconds, the decoded frames' own timestamps

    @property
    def key_frame(self) -> int:
        """Position (in ``frame_indices``) of the frame nearest the clip centre."""
        mid = (self.start + self.end) / 2
        return min(range(len(self.frame_times)), key=lambda j: abs(self.frame_times[j] - mid))


def derive_seed(seed: int, video_id: str, clip_index: int, salt: int | str = 0) -> int:
    """A 63-bit seed for one clip: independent of batching, sharding and resume."""
    text = f"{seed}/{video_id}/{clip_index}/{salt}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & (2**63 - 1)


def clip_bounds(duration: float, cfg: ClipConfig, *, frame_s: float = 0.0) -> list[tuple[float, float]]:
    """``[(start, end), ...]`` seconds for a video of ``duration`` seconds.

    A remainder after a full clip shorter than one frame (``frame_s``) is
    rounding, not a clip; a video shorter than one clip is one clip however
    short (one frame included), except under ``drop``. The last partial clip
    follows ``cfg.last`` (see :class:`ClipConfig`).
    """
    if duration <= 0:
        return []
    n_full = int(math.floor(duration / cfg.seconds + 1e-9))
    bounds = [(i * cfg.seconds, (i + 1) * cfg.seconds) for i in range(n_full)]
    rest = duration - n_full * cfg.seconds
    if not bounds:
        return [] if cfg.last == "drop" else [(0.0, duration)]
    if rest <= max(frame_s, 1e-6):
        return bounds
    if cfg.last == "drop":
        return bounds
    if cfg.last == "merge" or rest < cfg.min_last_seconds:
        bounds[-1] = (bounds[-1][0], duration)
        return bounds
    bounds.append((n_full * cfg.seconds, duration))
    return bounds


def _snap(index: int, keyframes: Sequence[int], fps: float, start: float, end: float,
          window: float) -> int:
    """The keyframe nearest ``index`` inside [start, end) and within ``window`` s, else ``index``."""
    if window <= 0:
        return index
    near = [k for k in keyframes if start <= k / fps < end and abs(k - index) / fps <= window]
    return min(near, key=lambda k: (abs(k - index), k)) if near else index


def plan_clips(num_frames: int, fps: float, cfg: ClipConfig, *, seed: int, video_id: str,
               keyframes: Sequence[int] = ()) -> list[Clip]:
    """Clips of a video with ``num_frames`` frames at ``fps``; frame choice per ``cfg.frames``.

    ``keyframes`` (frame indices) are used when ``cfg.keyframe_window`` > 0.
    """
    if num_frames < 1 or not fps > 0:
        return []
    duration = num_frames / fps
    clips = []
    for index, (start, end) in enumerate(clip_bounds(duration, cfg, frame_s=1.0 / fps)):
        if cfg.frames == "center":
            times = [(start + end) / 2]
        elif cfg.frames == "random":
            rng = random.Random(derive_seed(seed, video_id, index, "frame"))
            times = [start + rng.random() * (end - start)]
        else:  # even: k frames at the centres of k equal sub-windows
            k = cfg.num_frames
            times = [start + (j + 0.5) * (end - start) / k for j in range(k)]
        indices = tuple(_snap(min(int(t * fps), num_frames - 1), keyframes, fps, start, end,
                              cfg.keyframe_window) for t in times)
        clips.append(Clip(index=index, start=round(start, 3), end=round(end, 3),
                          frame_indices=indices,
                          frame_times=tuple(round(i / fps, 3) for i in indices)))
    return clips
