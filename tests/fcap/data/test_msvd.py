"""MSVD reader: AVI clips, descriptions, vid mapping and the standard split."""
from __future__ import annotations

import pytest

from data_layouts import link, loader_kwargs, refuse_open
from fcap.config.schema import build_component
from fcap.data import AnnotationError, build_loader
from registry import DATA_SOURCES


def msvd(root, **options):
    return build_component(DATA_SOURCES, {"name": "msvd", "root": str(root), **options})


@pytest.fixture
def real_msvd(tmp_path, real_avi):
    vids = {"bikeA_1_3": 5, "bikeB_0_2": 1200, "bikeC_4_9": 1201, "bikeD_2_4": 1301,
            "bikeE_3_5": 1970}
    for name in vids:
        link(real_avi, str(tmp_path / "YouTubeClips" / f"{name}.avi"))
    (tmp_path / "youtube_mapping.txt").write_text(
        "".join(f"{name} vid{vid}\n" for name, vid in vids.items()))
    lines = ["# header as in the official file", ""]
    lines += [f"{name} a person rides a bike number {k}" for name in vids for k in range(2)]
    (tmp_path / "AllVideoDescriptions.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


@pytest.mark.parametrize("split, vids", [("train", ["vid5", "vid1200"]), ("val", ["vid1201"]),
                                         ("test", ["vid1301", "vid1970"])])
def test_standard_split_by_vid_number(real_msvd, env, split, vids):
    loader = build_loader(msvd(real_msvd, split=split), env=env,
                          **loader_kwargs(train=False, batch_size=8))
    batch = next(iter(loader))
    assert batch["ids"] == vids
    assert batch["pixel_values"].shape == (len(vids), 4, 3, 32, 32)
    assert batch["references"][0] == [f"a person rides a bike number {k}" for k in range(2)]


def test_training_pairs_each_caption(real_msvd, env):
    loader = build_loader(msvd(real_msvd), env=env, **loader_kwargs(batch_size=2))
    ids = sorted(i for b in [next(iter(loader))] for i in b["ids"])
    assert all(i.split("#")[0] in {"vid5", "vid1200"} for i in ids)
    assert len(loader) == 2  # 2 clips x 2 captions, batches of 2


def test_bad_mapping_line_names_file_and_line(real_msvd, env):
    (real_msvd / "youtube_mapping.txt").write_text("bikeA_1_3 vid5\nbikeB_0_2 1200\n")
    with pytest.raises(AnnotationError, match=r"youtube_mapping.txt: line 2: expected "
                                              r"'<clip name> vid<N>', got 'bikeB_0_2 1200'"):
        msvd(real_msvd).build(env=env)


def test_described_clip_without_vid_is_refused(real_msvd, env):
    (real_msvd / "youtube_mapping.txt").write_text("bikeA_1_3 vid5\n")
    with pytest.raises(AnnotationError, match=r"4 clip\(s\) described in "
                                              r"AllVideoDescriptions.txt have no vid number"):
        msvd(real_msvd).build(env=env)


def test_missing_descriptions_file(real_msvd, env):
    (real_msvd / "AllVideoDescriptions.txt").unlink()
    with pytest.raises(AnnotationError, match=r"AllVideoDescriptions.txt: missing"):
        msvd(real_msvd).build(env=env)


def test_a_descriptions_file_that_cannot_be_opened_names_it_and_why(real_msvd, env,
                                                                    monkeypatch):
    path = real_msvd / "AllVideoDescriptions.txt"
    refuse_open(monkeypatch, path, OSError(5, "Input/output error", str(path)))
    with pytest.raises(AnnotationError, match=f"annotation file {path}: cannot be read: "
                                              "Input/output error"):
        msvd(real_msvd).build(env=env)


def test_shapes_world_in_msvd_layout(shapes_roots, env):
    loader = build_loader(msvd(shapes_roots["msvd"], split="val"), env=env,
                          **loader_kwargs(train=False, batch_size=8, num_frames=8))
    batch = next(iter(loader))
    assert batch["ids"] == ["vid1201", "vid1202", "vid1203"]  # from val_list.txt
    assert batch["frame_mask"].all()


def _lists(root, **names):
    for split, clips in names.items():
        (root / f"{split}_list.txt").write_text("".join(f"{c}\n" for c in clips))


def test_split_lists_decide_the_split_when_all_three_exist(real_msvd, env):
    _lists(real_msvd, train=["bikeA_1_3"], val=["bikeB_0_2", "bikeE_3_5"], test=["bikeD_2_4"])
    loader = build_loader(msvd(real_msvd, split="val"), env=env,
                          **loader_kwargs(train=False, batch_size=8))
    assert next(iter(loader))["ids"] == ["vid1200", "vid1970"]  # not vid1201-1300


def test_split_lists_off_keeps_the_standard_split(real_msvd, env):
    _lists(real_msvd, train=["bikeA_1_3"], val=["bikeB_0_2"], test=["bikeD_2_4"])
    loader = build_loader(msvd(real_msvd, split="val", split_list=None), env=env,
                          **loader_kwargs(train=False, batch_size=8))
    assert next(iter(loader))["ids"] == ["vid1201"]


def test_some_split_lists_without_the_others_are_refused(real_msvd, env):
    _lists(real_msvd, val=["bikeB_0_2"])
    with pytest.raises(AnnotationError, match=r"val_list.txt: found beside it no train_list.txt, "
                                              r"test_list.txt: split lists come as all three"):
        msvd(real_msvd).build(env=env)


@pytest.mark.parametrize("lists, message", [
    ({"train": ["bikeA_1_3"], "val": ["bikeA_1_3"], "test": []},
     r"val_list.txt: line 1: clip 'bikeA_1_3' is also in train_list.txt"),
    ({"train": ["bikeA_1_3", "bikeA_1_3"], "val": [], "test": []},
     r"train_list.txt: line 2: clip 'bikeA_1_3' is listed twice"),
    ({"train": ["nosuchclip"], "val": [], "test": []},
     r"train_list.txt: line 1: clip 'nosuchclip' is not described"),
])
def test_bad_split_list_names_file_and_line(real_msvd, env, lists, message):
    _lists(real_msvd, **lists)
    with pytest.raises(AnnotationError, match=message):
        msvd(real_msvd).build(env=env)


def test_split_list_pattern_needs_the_split_name(real_msvd):
    with pytest.raises(ValueError, match=r"split_list must contain '\{split\}'"):
        msvd(real_msvd, split_list="lists.txt")
