"""Reading media: videos through decord, images through PIL (Sec. 3.1, 4).

fcap's one decord reader: :func:`open_video` opens a video (checked whole),
:func:`read_frames` fetches frames by index; the data sources and the
pseudolabel workers both read through them.

Every reader returns uint8 RGB arrays ``(t, H, W, 3)`` and raises
:class:`~fcap.data.errors.MediaError` whose reason names the cause, as
``KIND: detail``; the loader counts and skips by KIND: ``missing``,
``empty`` (0 bytes), ``not a video container``, ``no video`` (no video
stream), ``truncated``, ``unreadable`` (decord fails otherwise), ``no
frames``, ``window``. An image is a 1-frame video.

A truncated file often still opens: decord counts the frames it finds in the
bytes (AVI without its index, Matroska/WebM without cues), so the first
100 KB of a 795-frame AVI reads as a 0.3-s video. :func:`open_video`
compares that with what the container's header declares (read with PyAV:
the duration of AVI, MP4/MOV and Matroska/WebM, else a frame count) and
refuses a shortfall of more than 2 frames and 2% as ``truncated: 3 of 795
frames``. A truncated MP4/MOV does not open at all (its ``moov`` index is at
the end, or decord's scan of a front-indexed file fails); the reason then
says where the file ends, or how many of the declared frames it holds.
"""
from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass

import numpy as np

from fcap.data.errors import MediaError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")
# Frames a complete file may lack against its header (rounding of a declared duration,
# a last frame the encoder dropped): more than this is a truncated file.
TRUNCATION_SLACK_FRAMES = 2
TRUNCATION_SLACK_FRACTION = 0.02
# Top-level ISO-BMFF (MP4/MOV) boxes a file may start with.
_ISO_FIRST_BOXES = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pdin", b"uuid"}


@dataclass(frozen=True)
class Clip:
    """Frames of one clip: ``frames`` (t, H, W, 3) uint8, the first ``n_real`` real."""

    frames: np.ndarray
    n_real: int


def check_file(path: str) -> None:
    """MediaError for a missing, linked-to-nothing, folder or 0-byte path (decord reports
    them alike)."""
    if not os.path.exists(path):
        if os.path.islink(path):
            raise MediaError(path, f"missing: a symbolic link to {os.readlink(path)!r}, "
                                   "which does not exist")
        raise MediaError(path, "missing: no such file")
    if os.path.isdir(path):
        raise MediaError(path, "not a file: a folder")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty: zero-byte file")


def open_video(path: str | os.PathLike, size: int | None = None, *, num_threads: int = 1):
    """A decord ``VideoReader`` of a whole, decodable video (one decode thread by default).

    ``size``: frames are decoded resized to ``size x size`` (None: native).
    Raises MediaError naming the cause: see the module docstring.
    """
    import decord

    path = str(path)
    check_file(path)
    side = size or -1
    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads,
                                    width=side, height=side)
    except Exception as err:  # decord raises RuntimeError or DECORDError, whatever the cause
        raise MediaError(path, why_unopenable(path, err)) from None
    if len(reader) == 0:
        raise MediaError(path, "no frames: the video has zero frames")
    check_complete(path, reader)
    return reader


def check_complete(path: str, reader) -> None:
    """MediaError ``truncated: ...`` when ``reader`` holds clearly less than the header declares.

    Compared in time where the header gives one (decord's last frame against
    the declared duration): an AVI fills dropped frames with empty chunks that
    its header counts and no decoder returns, so counts alone would call a
    whole file truncated. Frame counts are compared where no duration is known.
    """
    n = len(reader)
    frames, seconds = declared_length(path)
    if seconds:
        try:
            first, last = reader.get_frame_timestamp([0, n - 1]).tolist()
        except Exception:  # no timestamps: nothing to compare
            return
        span = float(last[1] - first[0])
        fps = (reader.get_avg_fps() or n / span) if span > 0 else 0.0
        if seconds - span > max(TRUNCATION_SLACK_FRAMES / fps if fps else 0.0,
                                TRUNCATION_SLACK_FRACTION * seconds):
            of = f"{frames}" if frames else f"about {round(seconds * fps) if fps else '?'}"
            raise MediaError(path, f"truncated: {n} of {of} frames ({span:.2f} of {seconds:.2f} s "
                                   "the container declares; the file ends early)")
    elif frames and frames - n > max(TRUNCATION_SLACK_FRAMES, TRUNCATION_SLACK_FRACTION * frames):
        raise MediaError(path, f"truncated: {n} of {frames} frames (the container declares "
                               f"{frames}; the file ends early)")


def declared_length(path: str) -> tuple[int | None, float | None]:
    """What the container's header says: ``(frames, seconds)``, either None when it says nothing.

    AVI: its frame count (time slots, dropped frames included) and so its
    duration; MP4/MOV: the sample count and the track duration; Matroska/WebM:
    the segment duration. Elsewhere only a frame count, if any (ffmpeg may
    estimate a duration from the bytes present, which proves nothing).
    Cached per (path, size, mtime): loaders read the same file every epoch.
    """
    st = os.stat(path)
    return _declared_length(path, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _declared_length(path: str, size: int, mtime_ns: int) -> tuple[int | None, float | None]:
    try:
        import av

        with av.open(path) as container:
            if not container.streams.video:
                return None, None
            stream = container.streams.video[0]
            name = container.format.name
            frames = int(stream.frames or 0) or None
            seconds = None
            if name == "avi" and frames and stream.time_base:
                seconds = float(frames * stream.time_base)  # one chunk per time base unit
            elif name.startswith("mov,mp4") and stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            elif "matroska" in name and container.duration:
                frames, seconds = None, container.duration / 1e6
            return frames, seconds
    except Exception:  # PyAV absent or the header unreadable: nothing declared, nothing to compare
        return None, None


def why_unopenable(path: str, err: BaseException) -> str:
    """The cause, as a MediaError reason, of decord failing to open ``path`` (not 0 bytes)."""
    try:
        import av
    except ImportError:
        return f"unreadable: decord cannot open it ({_first_line(err, path)})"
    try:
        container = av.open(path)
    except Exception:  # ffmpeg cannot parse it: a cut MP4/MOV, or not a container at all
        iso = _iso_truncation(path, os.path.getsize(path))
        if iso:
            return f"truncated: {iso}"
        with open(path, "rb") as f:
            head = f.read(16)
        return f"not a video container: ffmpeg recognises no format in it (starts with {head!r})"
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            return (f"no video: the {container.format.name} container holds no video stream "
                    f"(streams: {', '.join(kinds)})")
        stream = container.streams.video[0]
        packets, end = 0, 0.0  # frames present, and where the last one ends (s)
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the end-of-stream marker
                    continue
                packets += 1
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is not None and packet.time_base:
                    end = max(end, float((ts + (packet.duration or 0)) * packet.time_base))
        except Exception:  # a read error ends the stream as EOF does
            pass
    frames, seconds = declared_length(path)
    fps = packets / end if end > 0 else 0.0
    if seconds and end > 0 and seconds - end > max(TRUNCATION_SLACK_FRAMES / fps,
                                                    TRUNCATION_SLACK_FRACTION * seconds):
        of = f"{frames}" if frames else f"about {round(seconds * fps)}"
        return (f"truncated: {packets} of {of} frames ({end:.2f} of {seconds:.2f} s the container "
                "declares; the file ends early)")
    if not seconds and frames and frames - packets > max(TRUNCATION_SLACK_FRAMES,
                                                         TRUNCATION_SLACK_FRACTION * frames):
        return (f"truncated: {packets} of {frames} frames (the container declares {frames}; "
                "the file ends early)")
    iso = _iso_truncation(path, os.path.getsize(path))
    if iso:
        return f"truncated: {iso}"
    return f"unreadable: decord cannot open it ({_first_line(err, path)})"


def _iso_truncation(path: str, size: int) -> str | None:
    """For an MP4/MOV: which top-level box the file ends inside, if it does."""
    offset, seen = 0, []
    with open(path, "rb") as f:
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if not seen and kind not in _ISO_FIRST_BOXES:
                return None  # not an ISO-BMFF file
            if not all(32 <= c < 127 for c in kind):
                return None
            if box_size == 1 and len(header) == 16:
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:  # the box runs to the end of the file
                box_size = size - offset
            if box_size < 8:
                return None
            seen.append(kind.decode())
            if offset + box_size > size:
                index = "" if "moov" in seen else "; its index (the 'moov' box) is missing"
                return (f"the file ends at byte {size:,} inside its '{kind.decode()}' box, which "
                        f"needs {offset + box_size:,} bytes{index}")
            offset += box_size
    if seen and "moov" not in seen and "moof" not in seen:
        return (f"the file ends after its {', '.join(seen)} boxes, without the 'moov' index "
                "that locates its frames")
    return None


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


def read_frames(reader, indices: list[int], *, path: str = "?") -> np.ndarray:
    """Frames ``indices`` of an open ``reader``, ``(len(indices), H, W, 3)`` uint8, in that order.

    Fetched with one decord ``get_batch`` of the distinct indices, ascending
    (decord seeks to the nearest keyframe once per frame); a repeated index
    is decoded once. A decode failure is MediaError ``unreadable: ...``.
    """
    unique = sorted(set(indices))
    try:
        batch = reader.get_batch(unique).asnumpy()
    except Exception as err:
        raise MediaError(path, f"unreadable: decoding frames {unique[:4]}... failed "
                               f"({_first_line(err, path)})") from None
    if batch.ndim != 4 or batch.shape[0] != len(unique):
        raise MediaError(path, f"unreadable: decoded {batch.shape} for {len(unique)} frames")
    row = {idx: i for i, idx in enumerate(unique)}
    return batch[[row[i] for i in indices]]


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
    frames = read_frames(reader, indices, path=path)
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
    return read_frames(reader, [idx], path=path)[0]


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
    return read_frames(reader, list(range(lo, hi)), path=path)


def read_image(source: str | bytes, *, path: str | None = None) -> Clip:
    """An image file (or its bytes) as a 1-frame clip."""
    from PIL import Image

    name = path or (source if isinstance(source, str) else "<bytes>")
    if isinstance(source, str):
        check_file(source)
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
