"""Reading real videos and photos through fcap.data.media and the pixel transform."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from data_layouts import MEAN, STD, image_bytes
from fcap.data.errors import MediaError
from fcap.data.media import (read_all_frames, read_centre_frame, read_clip, read_frame,
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
    ("text", "unreadable: decord cannot open it"),
    ("truncated", "unreadable: decord cannot open it"),
])
def test_bad_videos_raise_media_error_with_reason(kind, reason, tmp_path, real_videos):
    path = tmp_path / f"{kind}.mp4"
    if kind == "zero":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is a text file, not a video\n")
    elif kind == "truncated":
        data = open(real_videos["bikes"], "rb").read()
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError) as info:
        read_clip(str(path), num_frames=4)
    assert info.value.reason.startswith(reason)
    assert info.value.path == str(path)


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
