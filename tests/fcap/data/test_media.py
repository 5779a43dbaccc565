"""Reading real videos and photos through fcap.data.media and the pixel transform."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch

from data_layouts import MEAN, STD, image_bytes
from fcap.data.errors import MediaError
from fcap.data.media import (open_video, read_all_frames, read_centre_frame, read_clip, read_frame,
                             read_image, uniform_indices)
from fcap.data.transform import Preprocess


def test_uniform_indices_are_segment_centres():
    # 100 frames at 10 fps, window 2-6 s, 4 samples: centres 2.5, 3.5, 4.5, 5.5 s
    assert uniform_indices(100, 10.0, num_frames=4, start=2.0, end=6.0) == [25, 35, 45, 55]
    assert uniform_indices(100, 10.0, num_frames=1, start=2.0, end=6.0) == [40]
    # at 2 fps from 1 s: 1.25, 1.75, 2.25 s
    assert uniform_indices(100, 10.0, num_frames=3, start=1.0, end=9.0, sample_fps=2) == \
        [12, 17, 22]


def test_uniform_indices_window_after_end_is_reported():
    with pytest.raises(MediaError, match=r"window: starts at 20.00 s, after the video ends"):
        uniform_indices(100, 10.0, num_frames=4, start=20.0, end=28.0, path="v.mp4")


def test_read_clip_of_real_video(real_videos):
    clip = read_clip(real_videos["bikes"], num_frames=8, start=2.0, end=6.0)
    assert clip.frames.shape == (8, 272, 640, 3) and clip.frames.dtype == np.uint8
    assert clip.n_real == 8
    every = read_all_frames(real_videos["bikes"], 2.0, 6.0)
    fps = 25.0
    expected = [int((2.0 + (i + 0.5) * 0.5) * fps) - int(2.0 * fps) for i in range(8)]
    np.testing.assert_array_equal(clip.frames, every[expected])


def test_centre_frame_is_the_windows_centre(real_videos):
    path = real_videos["bigbuckbunny"]
    centre = read_centre_frame(path, 1.0, 3.0)
    np.testing.assert_array_equal(centre, read_frame(path, 2.0))
    assert centre.shape == (720, 1280, 3)


def test_short_window_is_padded_and_masked(real_videos):
    # 0.08 s at 25 fps holds 2 frames; asking for 8 gives 2 real ones and padding
    clip = read_clip(real_videos["bikes"], num_frames=8, start=1.0, end=1.08)
    assert clip.n_real == 2
    assert clip.frames.shape[0] == 8
    np.testing.assert_array_equal(clip.frames[2], clip.frames[1])


def test_read_image_of_real_photos(real_images, tmp_path):
    for name, array in real_images.items():
        path = tmp_path / f"{name}.png"
        path.write_bytes(image_bytes(array, "PNG"))
        clip = read_image(str(path))
        assert clip.n_real == 1
        np.testing.assert_array_equal(clip.frames[0], array)
    jpeg = read_image(image_bytes(real_images["coffee"]), path="coffee.jpg")
    assert jpeg.frames.shape == (1, 400, 600, 3)


@pytest.mark.parametrize("kind, reason", [
    ("missing", "missing: no such file"),
    ("zero", "empty: zero-byte file"),
    ("link", "missing: a symbolic link to 'gone.mp4', which does not exist"),
    ("folder", "not a file: a folder"),
    ("text", "not a video container: ffmpeg recognises no format in it (starts with b'this is"),
    # half of a real MP4 whose index (moov) is at the end: nothing can locate a frame
    ("truncated", "truncated: the file ends at byte 254,934 inside its 'mdat' box, which needs "),
])
def test_bad_videos_raise_media_error_with_reason(kind, reason, tmp_path, real_videos):
    path = tmp_path / f"{kind}.mp4"
    if kind == "zero":
        path.write_bytes(b"")
    elif kind == "link":
        path.symlink_to("gone.mp4")
    elif kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("this is a text file, not a video\n")
    elif kind == "truncated":
        data = open(real_videos["bikes"], "rb").read()
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError) as info:
        read_clip(str(path), num_frames=4)
    assert info.value.reason.startswith(reason)
    assert info.value.path == str(path)


LONG = 795  # frames: the AVI, whose first 100 KB decoded as a 0.3-s video


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory, real_videos) -> dict[str, str]:
    """Real bikes frames (160x68) looped to 795 frames at 25 fps, in four containers.

    ``avi`` (MPEG-4; frame count in its header, no index needed to decode),
    ``mp4`` (H.264, index at the end, PyAV's default), ``faststart.mp4``
    (index first) and ``mkv`` (H.264; a duration, not a count, in its header).
    """
    import av
    import decord

    from fcap.data.shapes.writers import write_video

    bikes = decord.VideoReader(real_videos["bikes"], width=160, height=68)
    frames = bikes.get_batch(list(range(len(bikes)))).asnumpy()
    frames = frames[np.arange(LONG) % len(frames)]
    root = tmp_path_factory.mktemp("long")
    paths = {kind: str(root / f"bikes.{kind}") for kind in ("avi", "mp4", "mkv")}
    for path in paths.values():
        write_video(path, frames, fps=25)
    paths["faststart.mp4"] = str(root / "bikes-faststart.mp4")
    with av.open(paths["faststart.mp4"], "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 68, "yuv420p"
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return paths


def _cut(path: str, size: int, tmp_path) -> str:
    cut = tmp_path / f"cut-{os.path.basename(path)}"
    cut.write_bytes(open(path, "rb").read()[:size])
    return str(cut)


def _avi_with_dropped_frames(path: str, frames: np.ndarray, every: int) -> int:
    """An AVI whose every ``every``-th time slot is an empty chunk (a dropped frame, as ffmpeg
    writes for gaps); returns the slots its header counts."""
    import av

    with av.open(path, "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        slot = 0
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, slot = slot, slot + 1
            out.mux(stream.encode(frame))
            if i % every == every - 1:
                empty = av.Packet(0)
                empty.stream, empty.pts, empty.dts = stream, slot, slot
                empty.time_base = stream.codec_context.time_base
                out.mux(empty)
                slot += 1
        out.mux(stream.encode())
    return slot


def test_first_100kb_of_a_795_frame_avi_is_truncated_not_a_short_video(long_videos, tmp_path):
    import decord

    cut = _cut(long_videos["avi"], 100_000, tmp_path)
    opened = len(decord.VideoReader(cut))  # what decord alone makes of it: a short, whole video
    assert 0 < opened < LONG / 5
    with pytest.raises(MediaError) as info:
        read_clip(cut, num_frames=4)  # the training/eval reader
    assert re.fullmatch(rf"truncated: {opened} of {LONG} frames \([0-9.]+ of 31\.80 s the "
                        r"container declares; the file ends early\)", info.value.reason)
    with pytest.raises(MediaError, match=f"truncated: {opened} of {LONG} frames"):
        read_centre_frame(cut)
    # Whole files pass: the AVI, and one whose header also counts 10 dropped (empty) frames
    assert len(open_video(long_videos["avi"])) == LONG
    frames = read_all_frames(long_videos["avi"], 0.0, 2.0)
    dropped = str(tmp_path / "dropped.avi")
    slots = _avi_with_dropped_frames(dropped, frames, every=5)
    assert (slots, len(decord.VideoReader(dropped))) == (60, 50)
    assert len(read_all_frames(dropped)) == 50


def test_truncated_matroska_is_judged_by_its_declared_duration(long_videos, tmp_path):
    import decord

    assert len(open_video(long_videos["mkv"])) == LONG
    cut = _cut(long_videos["mkv"], os.path.getsize(long_videos["mkv"]) // 3, tmp_path)
    opened = len(decord.VideoReader(cut))
    assert 0 < opened < LONG / 2
    with pytest.raises(MediaError) as info:
        read_clip(cut, num_frames=4)
    assert re.fullmatch(rf"truncated: {opened} of about {LONG} frames \([0-9.]+ of 31\.80 s the "
                        r"container declares; the file ends early\)", info.value.reason)


def test_truncated_mp4_reasons_say_where_the_file_ends(long_videos, real_videos, tmp_path):
    for path in (long_videos["mp4"], long_videos["faststart.mp4"], *real_videos.values()):
        assert len(open_video(path)) in (LONG, 132, 250)  # whole files pass
    # index first: ffmpeg reads the frame count, decord fails its scan; the reason counts frames
    cut = _cut(long_videos["faststart.mp4"], os.path.getsize(long_videos["faststart.mp4"]) // 2,
               tmp_path)
    with pytest.raises(MediaError) as info:
        read_clip(cut, num_frames=4)
    assert re.fullmatch(rf"truncated: \d+ of {LONG} frames \([0-9.]+ of 31\.80 s the container "
                        r"declares; the file ends early\)", info.value.reason)
    # index last (the default): nothing locates a frame; the reason names the box cut short
    size = os.path.getsize(long_videos["mp4"]) // 2
    with pytest.raises(MediaError) as info:
        read_clip(_cut(long_videos["mp4"], size, tmp_path), num_frames=4)
    assert info.value.reason.startswith(f"truncated: the file ends at byte {size:,} inside its "
                                        "'mdat' box, which needs ")
    assert info.value.reason.endswith("its index (the 'moov' box) is missing")


def test_audio_only_file_has_no_video(tmp_path):
    import wave

    path = tmp_path / "speech.mp4"  # a WAV under a video name
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)
    with pytest.raises(MediaError) as info:
        read_clip(str(path), num_frames=1)
    assert info.value.reason == "no video: the wav container holds no video stream (streams: audio)"


def test_bad_images_raise_media_error(tmp_path, real_images):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(MediaError, match="unreadable: PIL cannot decode it"):
        read_image(str(text))
    truncated = image_bytes(real_images["astronaut"])[:2000]
    with pytest.raises(MediaError, match="unreadable"):
        read_image(truncated, path="astronaut.jpg")


def test_preprocess_resizes_crops_and_normalises():
    frames = np.full((2, 60, 100, 3), 255, dtype=np.uint8)
    frames[:, :, :10] = 0  # a black band on the left, cropped away by the centre crop
    out = Preprocess(32, MEAN, STD)(frames)
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32
    expected = (1.0 - torch.tensor(MEAN)) / torch.tensor(STD)
    torch.testing.assert_close(out[0, :, 16, 16], expected)
    torch.testing.assert_close(out.amin(dim=(0, 2, 3)), expected)  # no black left


def test_preprocess_rejects_bad_stats():
    with pytest.raises(ValueError, match="std must be positive"):
        Preprocess(32, MEAN, (0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="mean must have 3 values"):
        Preprocess(32, (0.5, 0.5), STD)
