"""A user's files survive every pseudolabel entry point that can touch them (issue 11, item 1).

fcap writes and removes only inside folders it created and marked (fcap/io.py):
``shards/`` and ``report/`` are claimed; merge outputs written beside other
files replace only what an earlier merge wrote; the tiny BLIP build never
replaces a folder.
"""
import json
import os
import shutil
from pathlib import Path

import pytest

import fcap.pseudolabel  # noqa: F401
from fcap.config import from_dict
from fcap.context import StageContext
from fcap.io import MARKER, OwnershipError, is_owned
from fcap.pseudolabel.merge import main as merge_main
from fcap.pseudolabel.shard import run_shard
from registry import TASKS


def _ctx(run_dir: Path, stage: str, **kw) -> StageContext:
    return StageContext("exp", "default", stage, run_dir, "hash", **kw)


def _label(cfg, run_dir: Path):
    return TASKS.get("pseudolabel").obj(cfg, _ctx(run_dir, "label"))


def _merge(run_dir: Path, label_dir: Path, report_clips: int = 0):
    merge = TASKS.get("pseudolabel_merge")
    return merge.obj(from_dict(merge.config, {"report_clips": report_clips}),
                     _ctx(run_dir, "merge", deps={"label": label_dir}))


def user_folder(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def cfg(make_cfg, shapes_howto):
    return make_cfg(shapes_howto, num_workers=0)


def test_label_stage_pointed_at_a_users_shards_folder_is_refused(tmp_path, cfg, captioner):
    mine = user_folder(tmp_path / "mine", {
        "notes.txt": "my notes", "shards/readme.txt": "my shards",
        "shards/shard-00000-of-00001.manifest.json": '{"mine": true}'})
    before = snapshot(mine)
    for _ in range(2):  # and a rerun
        with pytest.raises(OwnershipError) as info:
            _label(cfg, mine)
        assert str(info.value).startswith(f"fcap will not use {mine / 'shards'} (set by output_root) "
                                          "as its pseudolabel shards folder: it exists, holds files "
                                          "fcap did not write")
        with pytest.raises(OwnershipError, match=r"\(set by out_dir\)"):
            run_shard(cfg, 0, mine, captioner=captioner)
        assert snapshot(mine) == before


def test_label_and_merge_write_beside_a_users_files_and_rerun(tmp_path, cfg, captioner):
    label = user_folder(tmp_path / "label", {"notes.txt": "label notes", "config.yaml": "a: 1\n"})
    merged = user_folder(tmp_path / "merge", {"notes.txt": "merge notes", "log.txt": "log\n"})
    label_before, merge_before = snapshot(label), snapshot(merged)
    for _ in range(2):  # the rerun skips the finished shard and merges again
        _label(cfg, label)
        _merge(merged, label, report_clips=2)
        assert {k: v for k, v in snapshot(label).items() if k in label_before} == label_before
        assert {k: v for k, v in snapshot(merged).items() if k in merge_before} == merge_before
    assert is_owned(label / "shards") and is_owned(merged / "report")
    assert not is_owned(label) and not is_owned(merged)  # their other files stay the user's
    # A merged file changed by hand is no longer fcap's to replace.
    edited = merged / "pseudolabels.jsonl"
    edited.write_text(edited.read_text().replace('"caption": "', '"caption": "checked: '))
    after_edit = snapshot(merged)
    with pytest.raises(OwnershipError, match=f"fcap will not overwrite {edited}: {merged} has no "
                                             "fcap marker"):
        _merge(merged, label)
    assert snapshot(merged) == after_edit


def test_merge_pointed_at_a_users_outputs_is_refused(tmp_path, cfg, captioner, capsys):
    label = tmp_path / "label"
    _label(cfg, label)
    mine = user_folder(tmp_path / "mine", {
        "pseudolabels.jsonl": '{"video_id": "mine"}\n', "index.json": '{"mine": true}\n',
        "report/index.html": "<p>my report</p>", "notes.txt": "my notes"})
    only_report = user_folder(tmp_path / "only-report", {"report/index.html": "mine"})
    notes = user_folder(tmp_path / "notes", {"notes.txt": "my notes"})
    before = snapshot(mine)
    for _ in range(2):
        with pytest.raises(OwnershipError) as info:
            _merge(mine, label)
        assert str(info.value).startswith(f"fcap will not overwrite {mine / 'pseudolabels.jsonl'}, "
                                          f"{mine / 'index.json'}: {mine} has no fcap marker")
        with pytest.raises(OwnershipError, match=f"fcap will not use {only_report / 'report'} as "
                                                 "its pseudolabel report folder"):
            _merge(only_report, label, report_clips=2)
        # a folder named on the command line is claimed: any file fcap did not write refuses it
        for dest in (mine, notes):
            assert merge_main([str(label), "--dest", str(dest), "--report", "2"]) == 5  # refused
            assert f"fcap will not use {dest} (set by --dest) as its pseudolabel merge output " \
                   "folder" in capsys.readouterr().err
        assert snapshot(mine) == before and snapshot(notes) == {"notes.txt": b"my notes"}
    assert snapshot(only_report) == {"report/index.html": b"mine"}  # nothing written beside it
    # an empty or new --dest is claimed and reused
    for _ in range(2):
        assert merge_main([str(label), "--dest", str(tmp_path / "new")]) == 0
    assert is_owned(tmp_path / "new")


def test_the_progress_log_is_deleted_only_from_a_marked_folder(tmp_path, cfg, captioner):
    def unmark(_):
        (tmp_path / "shards" / MARKER).unlink(missing_ok=True)

    with pytest.raises(OwnershipError, match="fcap will not delete .*progress.jsonl: .* lost its "
                                             "fcap marker"):
        run_shard(cfg, 0, tmp_path, captioner=captioner, on_flush=unmark)
    assert (tmp_path / "shards" / "shard-00000-of-00001.progress.jsonl").is_file()


def test_tiny_blip_builds_never_replace_a_users_folder(tmp_path, monkeypatch):
    from fcap.models.tiny_blip import build_random_blip
    from fcap.pseudolabel.blip_labeler import tiny_blip_dir

    mine = user_folder(tmp_path / "mine", {"config.json": '{"mine": true}'})
    with pytest.raises(OwnershipError, match=f"fcap will not use {mine} \\(set by out_dir\\)"):
        build_random_blip(mine)
    assert snapshot(mine) == {"config.json": b'{"mine": true}'}

    monkeypatch.setenv("FCAP_CACHE", str(tmp_path / "cache"))
    built = tiny_blip_dir()  # where the cache puts it (fcap/models/tiny_cache.py)
    shutil.rmtree(built)
    target = user_folder(built, {"mine.txt": "mine"})
    with pytest.raises(OSError):  # the finished build cannot be renamed onto a non-empty folder
        tiny_blip_dir()
    assert snapshot(target) == {"mine.txt": b"mine"}
    assert sorted(os.listdir(target.parent)) == [".locks", target.name]  # scratch build gone
    os.unlink(target / "mine.txt")
    os.rmdir(target)
    assert tiny_blip_dir() == built
    assert is_owned(built) and json.loads((built / "config.json").read_text())["model_type"] == "blip"
    assert sorted(os.listdir(target.parent)) == [".locks", target.name]
