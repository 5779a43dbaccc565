"""HowTo100M reader: pseudolabel and ASR captions over real and generated videos."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_layouts import link, loader_kwargs
from fcap.config.schema import build_component
from fcap.data import AnnotationError, build_loader
from fcap.data.howto100m import asr_windows
from fcap.data.shapes.render import CHIT_CHAT, COLOURS
from registry import DATA_SOURCES


def howto(root, **options):
    return build_component(DATA_SOURCES, {"name": "howto100m", "root": str(root), **options})


@pytest.fixture
def real_howto(tmp_path, real_videos):
    link(real_videos["bikes"], str(tmp_path / "bikesvid001.mp4"))  # 10 s
    link(real_videos["bigbuckbunny"], str(tmp_path / "bunnyvid002.mkv"))  # 5.3 s
    records = [
        {"video_id": "bikesvid001", "clip_index": 0, "start": 0.0, "end": 8.0,
         "frame_time": 4.0, "caption": "a man riding a bike down a street"},
        {"video_id": "bikesvid001", "clip_index": 1, "start": 8.0, "end": 10.0,
         "frame_time": 9.0, "caption": "a bicycle parked next to a wall"},
        {"video_id": "bunnyvid002", "clip_index": 0, "start": 0.0, "end": 5.3,
         "frame_time": 2.65, "caption": "a cartoon rabbit in a field"},
    ]
    (tmp_path / "pseudolabels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    asr = {"bikesvid001": {"start": [0.0, 2.5, 5.1, 7.0], "end": [2.4, 5.0, 6.9, 9.5],
                           "text": ["hey guys", "today we ride", "", "down the street"]},
           "bunnyvid002": {"start": [0.5], "end": [3.0], "text": ["look at this bunny"]}}
    (tmp_path / "caption.json").write_text(json.dumps(asr))
    return tmp_path


def test_pseudolabel_clips_use_their_windows(real_howto, env):
    loader = build_loader(howto(real_howto), env=env, **loader_kwargs(train=False, batch_size=8))
    batch = next(iter(loader))
    assert batch["ids"] == ["bikesvid001#0", "bikesvid001#1", "bunnyvid002#0"]
    assert batch["captions"][2] == "a cartoon rabbit in a field"
    assert batch["pixel_values"].shape == (3, 4, 3, 32, 32)
    assert batch["media_keys"][1] == "bikesvid001@8.000-10.000"


def test_asr_segments_are_joined_into_8_second_windows():
    entry = {"start": [0.0, 2.0, 4.0, 6.0, 8.5, 11.0], "end": [1.9, 3.9, 5.9, 8.2, 10.9, 12.0],
             "text": ["a", "b", "c", "d", "e", "f"]}
    assert asr_windows("v", entry, 8.0) == [(0.0, 8.2, "a b c d"), (8.5, 12.0, "e f")]
    assert asr_windows("v", entry, 4.0) == [(0.0, 5.9, "a b c"), (6.0, 10.9, "d e"),
                                            (11.0, 12.0, "f")]


def test_asr_captions_from_caption_json(real_howto, env):
    loader = build_loader(howto(real_howto, captions="asr"), env=env,
                          **loader_kwargs(train=False, batch_size=8))
    batch = next(iter(loader))
    assert batch["ids"] == ["bikesvid001#asr0", "bunnyvid002#asr0"]
    assert batch["captions"] == ["hey guys today we ride down the street", "look at this bunny"]


def test_absent_video_is_skipped_or_dropped(real_howto, env, caplog):
    with open(real_howto / "pseudolabels.jsonl", "a") as f:
        f.write(json.dumps({"video_id": "gone", "clip_index": 0, "start": 0, "end": 8,
                            "frame_time": 4, "caption": "x"}) + "\n")
    env.skips.max_skip_fraction = 1.0
    skip = build_loader(howto(real_howto), env=env, **loader_kwargs(train=False, batch_size=8))
    batch = next(iter(skip))
    assert batch["skipped"] == [(str(real_howto / "gone.mp4"), "missing: no such file")]
    assert len(batch["ids"]) == 3
    drop = build_loader(howto(real_howto, missing="drop"), env=env,
                        **loader_kwargs(train=False, batch_size=8))
    assert next(iter(drop))["skipped"] == []
    assert "dropped 1 clips of 1 videos absent" in caplog.text


@pytest.mark.parametrize("line, problem", [
    ('{"video_id": "v", "clip_index": 0, "start": 0, "end": 8, "caption": "x"}',
     "line 1: missing key 'frame_time'"),
    ('{"video_id": "v", "clip_index": 0, "start": 8, "end": 8, "frame_time": 8, "caption": "x"}',
     "line 1: end 8 <= start 8"),
    ("not json", "line 1: not valid JSON"),
])
def test_malformed_pseudolabels_name_file_and_line(real_howto, env, line, problem):
    (real_howto / "pseudolabels.jsonl").write_text(line + "\n")
    with pytest.raises(AnnotationError, match="pseudolabels.jsonl") as info:
        howto(real_howto).build(env=env)
    assert problem in str(info.value)


def test_malformed_caption_json(real_howto, env):
    (real_howto / "caption.json").write_text(json.dumps({"v": {"start": [0], "end": [1]}}))
    with pytest.raises(AnnotationError, match=r"caption.json: video 'v': missing key 'text'"):
        howto(real_howto, captions="asr").build(env=env)
    (real_howto / "caption.json").write_text(json.dumps(
        {"v": {"start": [0, 1], "end": [1], "text": ["a", "b"]}}))
    with pytest.raises(AnnotationError, match=r"different lengths \(2, 1, 2\)"):
        howto(real_howto, captions="asr").build(env=env)


def test_pseudolabels_option_points_elsewhere(real_howto, tmp_path_factory, env):
    other = tmp_path_factory.mktemp("labels") / "merged.jsonl"
    other.write_text(json.dumps({"video_id": "bunnyvid002", "clip_index": 3, "start": 1.0,
                                 "end": 2.0, "frame_time": 1.5, "caption": "elsewhere"}) + "\n")
    loader = build_loader(howto(real_howto, pseudolabels=str(other)), env=env,
                          **loader_kwargs(train=False))
    assert next(iter(loader))["captions"] == ["elsewhere"]


@pytest.mark.parametrize("captions", ["pseudolabel", "asr"])
def test_shapes_world_in_howto100m_layout(shapes_roots, env, captions):
    root = Path(shapes_roots["howto100m"])
    assert not (root / "pseudolabels.jsonl").exists()  # like real HowTo100M: videos + ASR only
    # pseudolabels come from the pseudolabel stage; here the generator's own clip captions
    truth = {"pseudolabels": str(root.parent / "truth" / "howto100m.jsonl")} \
        if captions == "pseudolabel" else {}
    loader = build_loader(howto(str(root), captions=captions, **truth), env=env,
                          **loader_kwargs(train=False, batch_size=64, num_frames=8))
    batch = next(iter(loader))
    assert batch["skipped"] == [] and batch["frame_mask"].all()
    text = " ".join(batch["captions"])
    if captions == "pseudolabel":
        assert len(batch["ids"]) == 4 * 2  # videos x scenes
        assert all(c.endswith("background") for c in batch["captions"])
    else:
        assert any(chat in text for chat in CHIT_CHAT)  # ASR is partly unrelated chit-chat
        assert any(f" {colour} " in text for colour in COLOURS)  # and partly about the video


def test_pseudolabels_of_another_collection_are_reported(real_howto, tmp_path_factory, env,
                                                         caplog):
    merged = tmp_path_factory.mktemp("merge")
    (merged / "pseudolabels.jsonl").write_text((real_howto / "pseudolabels.jsonl").read_text())
    index = {"pseudolabels": "pseudolabels.jsonl", "collection": {"videos": str(real_howto)}}
    (merged / "index.json").write_text(json.dumps(index))
    howto(real_howto, pseudolabels=str(merged / "pseudolabels.jsonl")).build(env=env)
    assert "caption the videos of" not in caplog.text  # the collection it labelled
    index["collection"]["videos"] = "/data/another/howto100m"
    (merged / "index.json").write_text(json.dumps(index))
    howto(real_howto, pseudolabels=str(merged / "pseudolabels.jsonl")).build(env=env)
    assert (f"the pseudolabels {merged / 'pseudolabels.jsonl'} caption the videos of "
            f"/data/another/howto100m (its index.json) but this source reads {real_howto}"
            in caplog.text)
