"""The shapes world: cached and idempotent, and its captions say what the pixels show."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from data_layouts import SMALL_WORLD, loader_kwargs
from fcap.config.schema import build_component
from fcap.data import build_loader
from fcap.data.media import read_all_frames
from fcap.data.shapes import ShapesWorldConfig, ensure_shapes_world
from fcap.data.shapes.render import BACKGROUNDS, COLOURS, DIRECTIONS, random_scene, render_clip
from registry import DATA_SOURCES


def test_second_call_reuses_the_cache_and_another_config_regenerates(tmp_path):
    small = ShapesWorldConfig(msrvtt_videos=(4, 1, 1), msvd_videos=(2, 1, 1), howto_videos=1,
                              howto_scenes=1, laion_images=6, laion_shard_size=3)
    roots = ensure_shapes_world(str(tmp_path), small)
    assert set(roots) == {"msrvtt", "msvd", "howto100m", "laion"}
    video = os.path.join(roots["msrvtt"], "videos", "all", "video0.mp4")
    stamp = os.stat(video).st_mtime_ns
    assert ensure_shapes_world(str(tmp_path), small) == roots
    assert os.stat(video).st_mtime_ns == stamp  # not rewritten
    bigger = ShapesWorldConfig(**{**small.__dict__, "msrvtt_videos": (5, 1, 1)})
    ensure_shapes_world(str(tmp_path), bigger)
    info = json.load(open(os.path.join(roots["msrvtt"], "train_val_videodatainfo.json")))
    assert sum(v["split"] == "train" for v in info["videos"]) == 5
    marker = json.load(open(tmp_path / "shapes-world.json"))
    assert marker["hash"] == bigger.digest() != small.digest()


def test_generation_is_deterministic(tmp_path):
    small = ShapesWorldConfig(seed=9, msrvtt_videos=(3, 1, 1), msvd_videos=(1, 1, 1),
                              howto_videos=1, howto_scenes=1, laion_images=2, laion_shard_size=2)
    a = ensure_shapes_world(str(tmp_path / "a"), small)
    b = ensure_shapes_world(str(tmp_path / "b"), small)
    for name in ("train_val_videodatainfo.json", "videos/all/video2.mp4"):
        assert open(f"{a['msrvtt']}/{name}", "rb").read() == open(f"{b['msrvtt']}/{name}",
                                                                   "rb").read()


def _nearest(rgb, table):
    return min(table, key=lambda k: float(np.sum((np.asarray(table[k]) - rgb) ** 2)))


def test_captions_match_colour_shape_background_and_motion(shapes_roots):
    info = json.load(open(os.path.join(shapes_roots["msrvtt"], "train_val_videodatainfo.json")))
    first = {}
    for s in info["sentences"]:
        first.setdefault(s["video_id"], s["caption"])
    for vid in list(first)[:8]:
        words = first[vid].split()
        colour, direction, background = words[1], None, words[-2]
        direction = next(w for w in words if w in DIRECTIONS)
        frames = read_all_frames(os.path.join(shapes_roots["msrvtt"], "videos", "all",
                                              f"{vid}.mp4")).astype(float)
        bg = frames[0, 0, 0]
        assert _nearest(bg, BACKGROUNDS) == background
        centroids = []
        for frame in frames:
            mask = np.abs(frame - bg).sum(-1) > 120
            assert mask.sum() > 10
            assert _nearest(frame[mask].mean(0), COLOURS) == colour
            ys, xs = np.nonzero(mask)
            centroids.append((xs.mean(), ys.mean()))
        dx = centroids[-1][0] - centroids[0][0]
        dy = centroids[-1][1] - centroids[0][1]
        ex, ey = DIRECTIONS[direction]
        assert dx * ex + dy * ey > 8  # moved > 8 px the captioned way (of 32)
        assert abs(dx * ey) + abs(dy * ex) < 3  # and not sideways


def test_shapes_source_reads_each_layout_through_its_real_reader(shapes_roots, env):
    root = os.path.dirname(shapes_roots["msrvtt"])
    seen = {}
    for layout in ("msrvtt", "msvd", "howto100m", "laion"):
        block = {"name": "shapes", "root": root, "layout": layout,
                 "world": {**SMALL_WORLD.__dict__}}
        loader = build_loader(build_component(DATA_SOURCES, block), env=env,
                              **loader_kwargs(batch_size=2, num_frames=8))
        batch = next(iter(loader))
        seen[layout] = (loader.name, batch["modality"], tuple(batch["pixel_values"].shape))
    assert seen == {"msrvtt": ("shapes-msrvtt/train", "video", (2, 8, 3, 32, 32)),
                    "msvd": ("shapes-msvd/train", "video", (2, 8, 3, 32, 32)),
                    "howto100m": ("shapes-howto100m", "video", (2, 8, 3, 32, 32)),
                    "laion": ("shapes-laion", "image", (2, 1, 3, 32, 32))}


def test_shapes_without_root_is_generated_in_the_fcap_cache(env, fcap_cache):
    world = {"msrvtt_videos": [2, 1, 1], "msvd_videos": [1, 1, 1], "howto_videos": 1,
             "howto_scenes": 1, "laion_images": 2, "laion_shard_size": 2}
    source = build_component(DATA_SOURCES, {"name": "shapes", "world": world}).build(env=env)
    digest = ShapesWorldConfig(**{**world, "msrvtt_videos": (2, 1, 1),
                                  "msvd_videos": (1, 1, 1)}).digest()
    assert source.roots["msrvtt"] == str(fcap_cache / f"shapes-world-{digest}" / "msrvtt")
    assert len(source.reader.items("train", train=False)) == 2  # the real msrvtt reader


def test_bad_world_config_is_a_config_error():
    from fcap.config.errors import ConfigError

    with pytest.raises(ConfigError, match=r"frame_size must be even and >= 16, got 33"):
        build_component(DATA_SOURCES, {"name": "shapes", "world": {"frame_size": 33}})


def test_a_moving_shape_never_touches_the_frame_edge():
    # a shape cut by the edge made libx264's bytes differ between two encodes of one clip
    rng = np.random.default_rng(0)
    for _ in range(500):
        scene = random_scene(rng)
        frames = render_clip(scene, size=32, frames=8)
        border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]],
                                axis=1)
        assert (border == np.asarray(BACKGROUNDS[scene.background], dtype=np.uint8)).all(), scene


def test_drawing_only_some_frames_gives_those_frames_pixels():
    """The tiny encoder's pretraining keeps 4 of 8 frames and BLIP's the centre one of 32:
    they draw only those, which must be the pixels of the whole clip's frames."""
    rng = np.random.default_rng(1)
    for _ in range(50):
        scene = random_scene(rng)
        whole = render_clip(scene, size=32, frames=8)
        assert np.array_equal(render_clip(scene, size=32, frames=8, indices=[1, 3, 4, 6]),
                              whole[[1, 3, 4, 6]])
        assert np.array_equal(render_clip(scene, size=48, frames=32, indices=[16])[0],
                              render_clip(scene, size=48, frames=32)[16])
    with pytest.raises(ValueError, match=r"indices: frame numbers in 0\.\.7, got \[2, 8\]"):
        render_clip(scene, size=32, frames=8, indices=[2, 8])


def test_a_cache_folder_that_cannot_be_made_names_fcap_cache(monkeypatch):
    from fcap.io import UnwritableError

    monkeypatch.setenv("FCAP_CACHE", "/proc/fcap-no-such")  # nobody can make a folder there
    with pytest.raises(UnwritableError, match=r"shapes world folder /proc/fcap-no-such/"
                                              r"shapes-world-\w+ \(set by FCAP_CACHE\)"):
        ensure_shapes_world(None, ShapesWorldConfig())
