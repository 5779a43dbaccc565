"""Pseudolabelling fails loudly: empty or mismatched folders, broken, truncated and 1-frame videos.

Every video ends labelled or listed as a failure whose reason names the cause,
and the data readers' budget (max_failure_fraction) stops a run that lost too
many videos or labelled no clip at all.
"""
import json
import re
from pathlib import Path

import pytest

import fcap.pseudolabel  # noqa: F401
from fcap.context import StageContext
from fcap.data.errors import DataError, SkipLimitError
from fcap.pseudolabel.merge import main as merge_main
from fcap.pseudolabel.shard import run_shard
from plabel_media import LONG_FRAMES, collection
from registry import TASKS


def _ctx(run_dir: Path, stage: str, **kw) -> StageContext:
    return StageContext("exp", "default", stage, run_dir, "hash", **kw)


def _label(cfg, run_dir: Path):
    return TASKS.get("pseudolabel").obj(cfg, _ctx(run_dir, "label"))


def _merge(run_dir: Path, label_dir: Path, **options):
    from fcap.config import from_dict

    merge = TASKS.get("pseudolabel_merge")
    return merge.obj(from_dict(merge.config, {"report_clips": 0, **options}),
                     _ctx(run_dir, "merge", deps={"label": label_dir}))


def _manifest(run_dir: Path, name: str = "shard-00000-of-00001") -> dict:
    return json.loads((run_dir / "shards" / f"{name}.manifest.json").read_text())


def test_an_empty_folder_is_an_error(tmp_path, make_cfg):
    (tmp_path / "videos").mkdir()
    cfg = make_cfg(tmp_path / "videos")
    with pytest.raises(DataError, match=re.escape(
            f"pseudolabel: no videos to label in {tmp_path / 'videos'} (option 'videos'): "
            "the folder holds no files")):
        _label(cfg, tmp_path / "run")
    with pytest.raises(DataError, match="no videos to label"):
        run_shard(cfg, 0, tmp_path / "out")
    for name in ("cooking", "crafts"):  # videos sorted into subfolders are not read: say so
        (tmp_path / "videos" / name).mkdir()
        (tmp_path / "videos" / name / "abc.mp4").write_bytes(b"")
    with pytest.raises(DataError, match=re.escape(
            "the folder holds no files, and 2 folder(s) (cooking, crafts) that are not read: the "
            "videos lie directly in it, <videos>/<video_id>.<ext> (HowTo100M layout)")):
        _label(cfg, tmp_path / "run2")


def test_a_folder_whose_videos_have_other_extensions_names_them(tmp_path, make_cfg, odd_videos):
    root = collection(tmp_path / "videos", {"a.avi": odd_videos / "long.avi",
                                            "b.avi": odd_videos / "one_frame.avi",
                                            "notes.txt": odd_videos / "text.mp4"})
    with pytest.raises(DataError) as info:
        _label(make_cfg(root), tmp_path / "run")
    assert str(info.value) == (
        f"pseudolabel: no videos to label in {root} (option 'videos'): none of its 3 files has an "
        "extension in option 'extensions' (mp4, webm, mkv): 2 .avi, 1 .txt")


def test_a_folder_of_broken_files_fails_with_reasons_grouped(tmp_path, make_cfg, odd_videos,
                                                             captioner):
    root = collection(tmp_path / "videos", {
        "text.mp4": odd_videos / "text.mp4", "empty.mp4": odd_videos / "empty.mp4",
        "cut.mp4": odd_videos / "cut.mp4", "truncated.avi": odd_videos / "truncated.avi",
        "text2.webm": odd_videos / "text.mp4"})
    cfg = make_cfg(root, extensions=["mp4", "webm", "avi"])
    with pytest.raises(SkipLimitError) as info:
        _label(cfg, tmp_path / "label")
    lines = str(info.value).splitlines()
    assert lines[0] == "pseudolabel stage 'label': no clip was labelled: 5 of 5 videos failed"
    assert lines[1] == "by reason: not a video container 2, truncated 2, empty 1"
    reasons = {f["video_id"]: f["error"] for f in _manifest(tmp_path / "label")["failures"]}
    assert reasons["empty"] == "empty: zero-byte file"
    assert reasons["text"].startswith("not a video container: ffmpeg recognises no format in it")
    assert re.match(rf"truncated: \d+ of {LONG_FRAMES} frames", reasons["truncated"])
    assert re.match(r"truncated: the file ends at byte [\d,]+ inside its 'mdat' box", reasons["cut"])
    for vid, reason in reasons.items():  # each failure listed with its file and cause
        assert f"  - {root / vid}." in str(info.value) and reason in str(info.value)
    # the merge refuses too, and writes no empty pseudolabels.jsonl
    with pytest.raises(SkipLimitError, match="no clip was labelled: 5 of 5 videos failed"):
        _merge(tmp_path / "merge", tmp_path / "label")
    assert not (tmp_path / "merge" / "pseudolabels.jsonl").exists()
    assert merge_main([str(tmp_path / "label")]) == 3  # data error (fcap/exit_codes.py)
    assert not (tmp_path / "label" / "pseudolabels.jsonl").exists()


def test_one_truncated_video_among_six_exceeds_the_default_budget(tmp_path, videos, make_cfg,
                                                                  odd_videos, captioner):
    good, durations = videos
    root = collection(tmp_path / "videos", {**{p.name: p for p in good.iterdir()},
                                            "truncated.avi": odd_videos / "truncated.avi"})
    cfg = make_cfg(root, extensions=["mp4", "avi"])
    with pytest.raises(SkipLimitError) as info:
        _label(cfg, tmp_path / "label")
    text = str(info.value)
    assert text.startswith("pseudolabel stage 'label': 1 of 6 videos (16.7%) failed, above "
                           "max_failure_fraction=0.05\nby reason: truncated 1\n")
    assert re.search(rf"  - {re.escape(str(root / 'truncated.avi'))}: truncated: \d+ of "
                     rf"{LONG_FRAMES} frames", text)
    assert "raise max_failure_fraction to accept the failures" in text
    manifest = _manifest(tmp_path / "label")  # the work is kept: the shard is finished
    assert set(manifest["videos"]) == set(durations) and manifest["counts"]["failures"] == 1
    # a larger budget accepts it without labelling again; the merge inherits that budget
    summary = _label(make_cfg(root, extensions=["mp4", "avi"], max_failure_fraction=0.2),
                     tmp_path / "label")
    assert summary["skipped"] == ["shard-00000-of-00001"] and summary["clips_labelled_now"] == 0
    index = _merge(tmp_path / "merge", tmp_path / "label")
    assert (index["videos"], index["failures"]) == (6, 1)
    records = (tmp_path / "merge" / "pseudolabels.jsonl").read_text()
    assert '"truncated"' not in records
    with pytest.raises(SkipLimitError, match=r"1 of 6 videos \(16.7%\) failed, above "
                                             r"max_failure_fraction=0.1"):
        _merge(tmp_path / "merge2", tmp_path / "label", max_failure_fraction=0.1)


def test_a_one_frame_video_is_one_clip(tmp_path, make_cfg, odd_videos, captioner):
    root = collection(tmp_path / "videos", {"still.mp4": odd_videos / "one_frame.mp4",
                                            "still2.avi": odd_videos / "one_frame.avi"})
    manifest = run_shard(make_cfg(root, extensions=["mp4", "avi"]), 0, tmp_path / "out",
                         captioner=captioner)
    assert manifest["videos"] == {"still": 1, "still2": 1} and manifest["failures"] == []
    records = [json.loads(x) for x in
               (tmp_path / "out" / "shards" / "shard-00000-of-00001.jsonl").read_text().splitlines()]
    assert [(r["video_id"], r["start"], r["end"], r["frame_time"]) for r in records] == [
        ("still", 0.0, 0.04, 0.0), ("still2", 0.0, 0.04, 0.0)]


def test_under_drop_a_video_shorter_than_a_clip_is_a_listed_failure(tmp_path, videos, make_cfg,
                                                                    odd_videos, captioner):
    good, durations = videos
    root = collection(tmp_path / "videos", {**{p.name: p for p in good.iterdir()},
                                            "still.mp4": odd_videos / "one_frame.mp4"})
    cfg = make_cfg(root, clips={"last": "drop"}, max_failure_fraction=0.5)
    manifest = run_shard(cfg, 0, tmp_path / "out", captioner=captioner)
    failures = {f["video_id"]: f["error"] for f in manifest["failures"]}
    assert failures == {
        "bigbuckbunny": "too short: 5.28 s is shorter than one clip (clips.seconds 8.0) and "
                        "clips.last is 'drop'",
        "still": "too short: 0.04 s is shorter than one clip (clips.seconds 8.0) and clips.last "
                 "is 'drop'"}
    labelled = set(manifest["videos"])
    assert labelled == set(durations) - {"bigbuckbunny"} and not labelled & set(failures)
    assert manifest["counts"]["videos"] == len(labelled) + len(failures)  # labelled or failed


def test_a_small_shard_of_many_is_judged_with_the_whole_collection(tmp_path, videos, make_cfg,
                                                                   odd_videos, captioner):
    good, _ = videos
    root = collection(tmp_path / "videos", {**{p.name: p for p in good.iterdir()},
                                            "text.mp4": odd_videos / "text.mp4"})
    for i in range(3):  # SLURM array elements: 2 videos each, one shard 50 % broken
        summary = _label(make_cfg(root, num_shards=3, shard_index=i), tmp_path / "label")
        assert summary["shards"] == [f"shard-0000{i}-of-00003"]
    assert sum(_manifest(tmp_path / "label", f"shard-0000{i}-of-00003")["counts"]["failures"]
               for i in range(3)) == 1
    with pytest.raises(SkipLimitError, match=r"1 of 6 videos \(16.7%\) failed, above "
                                             r"max_failure_fraction=0.05\nby reason: not a video "
                                             r"container 1"):
        _merge(tmp_path / "merge", tmp_path / "label")
    assert _merge(tmp_path / "merge", tmp_path / "label", max_failure_fraction=0.2)["failures"] == 1


def test_through_fcap_run_a_raised_budget_or_smaller_batch_resumes_the_finished_shards(
        tmp_path, videos, odd_videos, fcap_cache, in_tmp):
    """The failure message's advice, followed as a user does: the budget and the batching are
    run options, out of the stage's config hash, so the labels already made are kept (at
    paper scale, 64 GPU-days). A label setting still starts from scratch."""
    from fcap.cli import main
    from fcap.experiment import build_plan

    good, _ = videos
    root = collection(tmp_path / "videos", {**{p.name: p for p in list(good.iterdir())[:3]},
                                            "truncated.avi": odd_videos / "truncated.avi"})
    exp = tmp_path / "label.yaml"
    exp.write_text(f"""
name: label
output_root: {tmp_path / 'runs'}
stages:
  label:
    task: pseudolabel
    videos: {root}
    extensions: [mp4, avi]
    captioner: {{name: blip, source: tiny, cpu_threads: 1}}
    num_workers: 0
""")
    run_dir = tmp_path / "runs" / "label" / "default" / "label"
    assert main([str(exp)]) == 3  # 1 of 4 videos failed: over the default budget
    assert "raise max_failure_fraction to accept the failures" in (run_dir / "log.txt").read_text()
    made = _manifest(run_dir)["created"]
    assert main([str(exp), "stages.label.max_failure_fraction=0.3",
                 "stages.label.batch_size=3", "stages.label.num_workers=1"]) == 0
    log = (run_dir / "log.txt").read_text()
    assert "shard-00000-of-00001 already finished, skipped" in log
    assert "config changed" not in log and not list(run_dir.glob(".previous-*"))
    assert _manifest(run_dir)["created"] == made
    hashes = {o: build_plan(exp, overrides=[o]).get("default", "label").config_hash
              for o in ("seed=0", "stages.label.flush_every=7", "stages.label.prefetch_videos=1",
                        "stages.label.frame_size=64")}
    assert len({hashes[o] for o in list(hashes)[:3]}) == 1
    assert hashes["stages.label.frame_size=64"] != hashes["seed=0"]


def _shard_lines(run_dir: Path) -> list[str]:
    return (run_dir / "shards" / "shard-00000-of-00001.jsonl").read_text().splitlines()


def test_a_rerun_labels_again_the_failed_videos_whose_files_changed(tmp_path, videos, make_cfg,
                                                                    odd_videos, caplog):
    """The failure message's first advice, followed: replace the broken video and run again. Only
    the changed failure is labelled; the shard's other labels are kept, and the result equals a
    fresh run on the repaired folder."""
    good, _ = videos
    root = collection(tmp_path / "videos", {**{p.name: p for p in sorted(good.iterdir())[:3]},
                                            "truncated.avi": odd_videos / "truncated.avi",
                                            "cut.mp4": odd_videos / "cut.mp4"})
    cfg = make_cfg(root, extensions=["mp4", "avi"], max_failure_fraction=0.3)
    with pytest.raises(SkipLimitError, match=r"2 of 5 videos \(40.0%\) failed"):
        _label(cfg, tmp_path / "label")
    before, made = _shard_lines(tmp_path / "label"), _manifest(tmp_path / "label")["created"]
    assert {f["video_id"] for f in _manifest(tmp_path / "label")["failures"]} == {"truncated", "cut"}

    with pytest.raises(SkipLimitError, match=r"2 of 5 videos"):  # nothing changed: nothing redone
        _label(cfg, tmp_path / "label")
    assert _manifest(tmp_path / "label")["created"] == made

    (root / "truncated.avi").unlink()  # the user replaces the broken download
    (root / "truncated.avi").symlink_to(odd_videos / "long.avi")
    with caplog.at_level("INFO", logger="fcap"):
        summary = _label(cfg, tmp_path / "label")  # 1 of 5 failed: within the budget
    assert ("shard-00000-of-00001: 1 failed video(s) changed since they failed, labelling them "
            f"again and keeping the shard's other labels: {root / 'truncated.avi'}") in caplog.text
    manifest = _manifest(tmp_path / "label")
    assert [f["video_id"] for f in manifest["failures"]] == ["cut"]  # unchanged: not retried
    assert manifest["videos"]["truncated"] == 4 and summary["skipped"] == []
    assert summary["clips_labelled_now"] == 4  # long.avi's 4 clips, nothing else
    after = _shard_lines(tmp_path / "label")
    assert set(before) < set(after) and all('"truncated"' in x for x in set(after) - set(before))
    assert not (tmp_path / "label" / "shards" / "shard-00000-of-00001.progress.jsonl").exists()

    fresh = _label(cfg, tmp_path / "fresh")
    assert _shard_lines(tmp_path / "fresh") == after
    assert fresh["clips"] == summary["clips"] and fresh["failures"] == summary["failures"] == 1


def test_a_file_for_a_missing_id_is_labelled_on_the_next_run(tmp_path, videos, make_cfg, captioner):
    good, _ = videos
    first = sorted(good.iterdir())[:2]
    root = collection(tmp_path / "videos", {p.name: p for p in first})
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(p.stem for p in first) + "\nlate\n")
    cfg = make_cfg(root, ids=str(ids), max_failure_fraction=0.5)
    manifest = run_shard(cfg, 0, tmp_path / "out", captioner=captioner)
    assert [(f["video_id"], f["path"], f["stamp"]) for f in manifest["failures"]] == [
        ("late", None, None)]
    assert run_shard(cfg, 0, tmp_path / "out", captioner=captioner)["skipped"]
    (root / "late.mp4").symlink_to(first[0].resolve())  # the download finished
    manifest = run_shard(cfg, 0, tmp_path / "out", captioner=captioner)
    assert manifest["failures"] == [] and manifest["videos"]["late"] == manifest["videos"][first[0].stem]
    assert manifest["stats"]["clips_resumed"] == sum(
        n for v, n in manifest["videos"].items() if v != "late")
