"""MSR-VTT reader on real videos in the official layout, and its start-up errors."""
from __future__ import annotations

import json

import pytest
import torch

from data_layouts import loader_kwargs, refuse_open, write_msrvtt
from fcap.config.schema import build_component
from fcap.data import AnnotationError, DataError, build_loader
from registry import DATA_SOURCES


def msrvtt(root, **options):
    root = None if root is None else str(root)
    return build_component(DATA_SOURCES, {"name": "msrvtt", "root": root, **options})


@pytest.fixture
def real_msrvtt(tmp_path, real_videos):
    return write_msrvtt(tmp_path, {"video0": real_videos["bikes"],
                                   "video1": real_videos["bigbuckbunny"],
                                   "video2": real_videos["bikes"],
                                   "video3": real_videos["bigbuckbunny"]},
                        split_of={"video2": "validate", "video3": "test"}, captions_per_video=3)


def test_training_yields_one_item_per_caption(real_msrvtt, env):
    loader = build_loader(msrvtt(real_msrvtt), env=env, **loader_kwargs(batch_size=3))
    batch = next(iter(loader))
    assert batch["modality"] == "video"
    assert batch["pixel_values"].shape == (3, 4, 3, 32, 32)
    assert batch["frame_mask"].all()
    assert len(batch["captions"]) == 3 and batch["skipped"] == []
    assert all(ref == [cap] for ref, cap in zip(batch["references"], batch["captions"]))
    assert {i.split("#")[0] for i in batch["ids"]} <= {"video0", "video1"}
    assert len(loader) == 2  # 2 train videos x 3 captions = 6 items, batches of 3


@pytest.mark.parametrize("split, vid", [("val", "video2"), ("test", "video3")])
def test_evaluation_yields_one_item_per_video_with_all_references(real_msrvtt, env, split, vid):
    loader = build_loader(msrvtt(real_msrvtt, split=split), env=env,
                          **loader_kwargs(train=False, batch_size=8))
    batches = list(loader)
    assert len(batches) == 1
    assert batches[0]["ids"] == [vid]
    assert batches[0]["references"] == [[f"{vid} caption {k}" for k in range(3)]]


def test_pixels_are_normalised_frames_of_the_video(real_msrvtt, env):
    from fcap.data.media import read_clip
    from fcap.data.transform import Preprocess
    from data_layouts import MEAN, STD

    loader = build_loader(msrvtt(real_msrvtt, split="val"), env=env,
                          **loader_kwargs(train=False))
    batch = next(iter(loader))
    clip = read_clip(f"{real_msrvtt}/videos/all/video2.mp4", num_frames=4)
    torch.testing.assert_close(batch["pixel_values"][0], Preprocess(32, MEAN, STD)(clip.frames))


def test_missing_root_names_the_key(env):
    with pytest.raises(DataError, match=r"data source 'msrvtt': key 'root' is required"):
        msrvtt(None).build(env=env)
    with pytest.raises(DataError, match=r"key 'root' = '/no/such/dir' is not a directory"):
        msrvtt("/no/such/dir").build(env=env)


def test_missing_annotation_file_fails_at_start_up(tmp_path, env):
    (tmp_path / "videos").mkdir()
    with pytest.raises(AnnotationError, match=r"train_val_videodatainfo.json: missing "
                                              r"\(expected the official MSR-VTT format"):
        msrvtt(tmp_path).build(env=env)


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not valid JSON"),
    (json.dumps({"videos": []}), "missing list 'sentences'"),
    (json.dumps({"videos": [{"video_id": "video0"}], "sentences": []}),
     "videos[0]: missing key 'split' (has: video_id)"),
    (json.dumps({"videos": [{"video_id": "video0", "split": "train"}],
                 "sentences": [{"video_id": "video0", "caption": 7}]}),
     "sentences[0]: key 'caption' should be str, got int 7"),
    (json.dumps({"videos": [{"video_id": "video0", "split": "train"}], "sentences": []}),
     "1 train video(s) have no sentences (first: video0)"),
])
def test_malformed_annotation_names_file_and_problem(tmp_path, env, content, problem):
    (tmp_path / "train_val_videodatainfo.json").write_text(content)
    with pytest.raises(AnnotationError) as info:
        msrvtt(tmp_path).build(env=env)
    assert "train_val_videodatainfo.json" in str(info.value)
    assert problem in str(info.value)


def test_an_annotation_file_that_cannot_be_opened_names_it_and_why(tmp_path, env, monkeypatch):
    """Permission denied or an I/O error on a network file system: an AnnotationError (a data
    error, exit 3, also in the preflight), not a traceback."""
    info = tmp_path / "train_val_videodatainfo.json"
    info.write_text("{}")
    refuse_open(monkeypatch, info, PermissionError(13, "Permission denied", str(info)))
    with pytest.raises(AnnotationError, match=f"annotation file {info}: cannot be read: "
                                              "Permission denied"):
        msrvtt(tmp_path).build(env=env)


def test_unknown_split_is_a_config_error():
    from fcap.config.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'validate' is not allowed.*allowed: 'train', 'val'"):
        msrvtt("/tmp", split="validate")


def test_shapes_world_in_msrvtt_layout(shapes_roots, env):
    loader = build_loader(msrvtt(shapes_roots["msrvtt"], split="test"), env=env,
                          **loader_kwargs(train=False, batch_size=16, num_frames=8))
    items = [i for b in loader for i in b["ids"]]
    assert len(items) == 6
    first = next(iter(loader))
    assert first["pixel_values"].shape == (6, 8, 3, 32, 32)
    assert all(len(r) == 2 and "background" in r[0] for r in first["references"])
