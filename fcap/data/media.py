"""Reading media: videos through decord, images through PIL (Sec. 3.1, 4).

Every reader returns uint8 RGB arrays ``(t, H, W, 3)`` and raises
:class:`~fcap.data.errors.MediaError` with a short reason (``missing``,
``empty``, ``unreadable``, ``no frames``, ``window``) that the loader counts
and skips. An image is a 1-frame video.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np

from fcap.data.errors import MediaError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")


@dataclass(frozen=True)
class Clip:
    """Frames of one clip: ``frames`` (t, H, W, 3) uint8, the first ``n_real`` real."""

    frames: np.ndarray
    n_real: int


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise MediaError(path, "missing: no such file")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty: zero-byte file")


def open_video(path: str, *, num_threads: int = 1):
    """A decord ``VideoReader`` (one decode thread: loaders run in many workers)."""
    import decord

    _check_file(path)
    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
    except Exception as err:  # decord raises RuntimeError or DECORDError
        raise MediaError(path, f"unreadable: decord cannot open it "
                               f"({_first_line(err, path)})") from None
    if len(reader) == 0:
        raise MediaError(path, "no frames: the video has zero frames")
    return reader


def uniform_indices(n_frames: int, fps: float, *, num_frames: int, start: float | None = None,
                    end: float | None = None, sample_fps: float | None = None,
                    path: str = "?") -> list[int]:
    """Frame indices for ``num_frames`` samples over the window [start, end) seconds.

    Uniform: the centres of ``num_frames`` equal segments of the window (so one
    frame is the window's centre frame). With ``sample_fps``: frames every
    ``1/sample_fps`` s from ``start``, at most ``num_frames``. Repeated indices
    (a window shorter than ``num_frames`` frames) are dropped; the caller pads.
    """
    duration = n_frames / fps if fps > 0 else float(n_frames)
    fps = fps if fps > 0 else 1.0
    lo = 0.0 if start is None else max(0.0, float(start))
    hi = duration if end is None else min(float(end), duration)
    if lo >= duration:
        raise MediaError(path, f"window: starts at {lo:.2f} s, after the video ends "
                               f"({duration:.2f} s)")
    if hi <= lo:
        hi = min(duration, lo + 1.0 / fps)
    if sample_fps:
        times = [lo + (i + 0.5) / sample_fps for i in range(num_frames)]
        times = [t for t in times if t < hi] or [lo]
    else:
        step = (hi - lo) / num_frames
        times = [lo + (i + 0.5) * step for i in range(num_frames)]
    out: list[int] = []
    for t in times:
        idx = min(int(t * fps), n_frames - 1)
        if not out or idx != out[-1]:
            out.append(idx)
    return out


def read_clip(path: str, *, num_frames: int, start: float | None = None,
              end: float | None = None, sample_fps: float | None = None,
              num_threads: int = 1) -> Clip:
    """``num_frames`` frames of ``path`` over [start, end) s, padded to ``num_frames``.

    Padding repeats the last real frame; ``n_real`` says how many are real.
    ``num_frames=1`` seeks and decodes only the window's centre frame.
    """
    reader = open_video(path, num_threads=num_threads)
    indices = uniform_indices(len(reader), reader.get_avg_fps(), num_frames=num_frames,
                              start=start, end=end, sample_fps=sample_fps, path=path)
    try:
        frames = reader.get_batch(indices).asnumpy()
    except Exception as err:
        raise MediaError(path, f"unreadable: decoding frames {indices[:4]}... failed "
                               f"({_first_line(err, path)})") from None
    if frames.ndim != 4 or frames.shape[0] != len(indices):
        raise MediaError(path, f"unreadable: decoded {frames.shape} for {len(indices)} frames")
    n_real = frames.shape[0]
    if n_real < num_frames:
        pad = np.repeat(frames[-1:], num_frames - n_real, axis=0)
        frames = np.concatenate([frames, pad], axis=0)
    return Clip(np.ascontiguousarray(frames), n_real)


def read_frame(path: str, time_s: float, *, num_threads: int = 1) -> np.ndarray:
    """The single frame shown at ``time_s`` seconds, (H, W, 3) uint8 (seek + one decode)."""
    reader = open_video(path, num_threads=num_threads)
    fps = reader.get_avg_fps() or 1.0
    idx = min(max(int(time_s * fps), 0), len(reader) - 1)
    try:
        return reader[idx].asnumpy()
    except Exception as err:
        raise MediaError(path, f"unreadable: decoding frame {idx} failed "
                               f"({_first_line(err, path)})") from None


def read_centre_frame(path: str, start: float | None = None, end: float | None = None,
                      *, num_threads: int = 1) -> np.ndarray:
    """The centre frame of the window [start, end) s (whole video if omitted), (H, W, 3)."""
    return read_clip(path, num_frames=1, start=start, end=end,
                     num_threads=num_threads).frames[0]


def read_all_frames(path: str, start: float | None = None, end: float | None = None,
                    *, num_threads: int = 1) -> np.ndarray:
    """Every frame of the window, (t, H, W, 3): the expensive path pseudolabelling avoids."""
    reader = open_video(path, num_threads=num_threads)
    fps = reader.get_avg_fps() or 1.0
    lo = 0 if start is None else int(start * fps)
    hi = len(reader) if end is None else min(len(reader), int(np.ceil(end * fps)))
    if lo >= hi:
        raise MediaError(path, f"window: no frames between {start} and {end} s")
    try:
        return reader.get_batch(list(range(lo, hi))).asnumpy()
    except Exception as err:
        raise MediaError(path, f"unreadable: decoding frames {lo}-{hi} failed "
                               f"({_first_line(err, path)})") from None


def read_image(source: str | bytes, *, path: str | None = None) -> Clip:
    """An image file (or its bytes) as a 1-frame clip."""
    from PIL import Image

    name = path or (source if isinstance(source, str) else "<bytes>")
    if isinstance(source, str):
        _check_file(source)
    elif len(source) == 0:
        raise MediaError(name, "empty: zero-byte image")
    try:
        with Image.open(source if isinstance(source, str) else io.BytesIO(source)) as img:
            array = np.asarray(img.convert("RGB"))
    except Exception as err:  # PIL raises UnidentifiedImageError, OSError (truncated), ...
        raise MediaError(name, f"unreadable: PIL cannot decode it "
                               f"({_first_line(err, name)})") from None
    if array.size == 0:
        raise MediaError(name, "empty: image has no pixels")
    return Clip(array[None], 1)


def _first_line(err: BaseException, path: str = "") -> str:
    """The error's first line, without the path (the skip log already names it)."""
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    if path:
        line = line.replace(path, "the file")
    return line[:200]
