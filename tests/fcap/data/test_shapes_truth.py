"""The shapes world's ground truth sidecar (truth/clips.jsonl): one record per item the readers yield,
agreeing with the captions and the pixels."""
from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np
import pytest

from fcap.config.schema import build_component
from fcap.data.media import read_all_frames
from fcap.data.shapes import ShapesWorldConfig, ensure_shapes_world
from fcap.data.shapes.attributes import ATTRIBUTES, parse
from fcap.data.shapes.render import DIRECTIONS
from fcap.data.shapes.truth import load_truth
from registry import DATA_SOURCES

WORLD = ShapesWorldConfig(msrvtt_videos=(3, 4, 5), msvd_videos=(2, 3, 4), howto_videos=2,
                          howto_scenes=2, laion_images=5, laion_shard_size=3)
READS = [("msrvtt", "train"), ("msrvtt", "val"), ("msrvtt", "test"), ("msvd", "train"),
         ("msvd", "val"), ("msvd", "test"), ("howto100m", "train"), ("laion", "train")]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    roots = ensure_shapes_world(str(tmp_path_factory.mktemp("truth-world")), WORLD)
    return os.path.dirname(roots["msrvtt"])


def _items(world, env, layout, split):
    block = {"name": "shapes", "root": world, "layout": layout, "world": dict(WORLD.__dict__)}
    if layout in ("msrvtt", "msvd"):
        block["split"] = split
    reader = build_component(DATA_SOURCES, block).build(env=env).reader
    if layout == "laion":  # webdataset shards stream: read every shard
        return [item for shard in reader.shards(split) for item in reader.read_shard(shard)]
    return reader.items(split, train=False)


def test_every_item_a_reader_yields_has_exactly_one_truth_record(world, env):
    records = [json.loads(line) for line in open(os.path.join(world, "truth", "clips.jsonl"))]
    assert Counter((r["layout"], r["split"]) for r in records) == {
        ("msrvtt", "train"): 3, ("msrvtt", "val"): 4, ("msrvtt", "test"): 5, ("msvd", "train"): 2,
        ("msvd", "val"): 3, ("msvd", "test"): 4, ("howto100m", "train"): 4, ("laion", "train"): 5}
    for layout, split in READS:
        truth = load_truth(world, layout)
        ids = {item.id for item in _items(world, env, layout, split)}
        assert ids == {k for k, r in truth.items() if r["split"] == split}, (layout, split)
    # the layouts stay what the real datasets hold: nothing of the truth leaks into them
    for layout in ("msrvtt", "msvd", "howto100m", "laion"):
        assert not any("clips.jsonl" in files for _, _, files in os.walk(os.path.join(world,
                                                                                      layout)))


def test_truth_agrees_with_every_caption_the_world_wrote(world, env):
    for layout, split in READS:
        truth = load_truth(world, layout)
        for item in _items(world, env, layout, split):
            record = truth[item.id]
            for caption in item.captions:
                said = parse(caption)
                for attr in ATTRIBUTES:
                    if said[attr] is not None or layout in ("msrvtt", "msvd"):
                        assert said[attr] == record[attr], (layout, item.id, caption, attr)
            if layout == "laion":
                assert record["direction"] is None  # a still image shows no motion
            else:
                assert record["direction"] in DIRECTIONS


def test_howto100m_truth_direction_is_the_motion_in_the_pixels(world, env):
    truth = load_truth(world, "howto100m")
    for item in _items(world, env, "howto100m", "train"):
        frames = read_all_frames(item.path, item.start, item.end).astype(float)
        bg = frames[0, 0, 0]
        centroids = []
        for frame in (frames[0], frames[-1]):
            ys, xs = np.nonzero(np.abs(frame - bg).sum(-1) > 120)
            centroids.append((xs.mean(), ys.mean()))
        dx, dy = np.subtract(centroids[1], centroids[0])
        ex, ey = DIRECTIONS[truth[item.id]["direction"]]
        assert dx * ex + dy * ey > 8, item.id  # moved > 8 px (of 32) the recorded way


def test_default_world_evaluates_on_200_clips_per_split():
    cfg = ShapesWorldConfig()
    assert min(cfg.msrvtt_videos[1:]) >= 200 and min(cfg.msvd_videos[1:]) >= 200


def test_msvd_val_beyond_the_standard_vid_range_reads_from_the_split_lists(tmp_path, env):
    cfg = ShapesWorldConfig(msrvtt_videos=(0, 0, 0), msvd_videos=(2, 150, 3), howto_videos=1,
                            howto_scenes=1, laion_images=1)
    world = os.path.dirname(ensure_shapes_world(str(tmp_path / "w"), cfg)["msvd"])
    block = {"name": "shapes", "root": world, "layout": "msvd", "world": dict(cfg.__dict__)}
    ids = {}
    for split in ("train", "val", "test"):
        reader = build_component(DATA_SOURCES, {**block, "split": split}).build(env=env).reader
        ids[split] = [item.id for item in reader.items(split, train=False)]
    assert [len(ids[s]) for s in ("train", "val", "test")] == [2, 150, 3]
    assert ids["val"][0] == "vid1201" and ids["test"][0] == "vid1351"  # never a shared number
    truth = load_truth(world, "msvd")
    assert {split: {truth[vid]["split"] for vid in ids[split]} for split in ids} == {
        "train": {"train"}, "val": {"val"}, "test": {"test"}}
