"""Bad media are skipped, logged once, counted across workers; too many stop the run."""
from __future__ import annotations

import logging

import pytest

from data_layouts import loader_kwargs, write_msrvtt
from fcap.config.schema import build_component
from fcap.data import DataEnv, SkipLimitError, SkipStats, build_loader
from registry import DATA_SOURCES


@pytest.fixture
def corrupt_msrvtt(tmp_path, real_videos, shapes_roots):
    """4 bad videos among 12 good ones (2 real, 10 generated)."""
    bikes = open(real_videos["bikes"], "rb").read()
    videos = {"video0": real_videos["bikes"], "video1": real_videos["bigbuckbunny"]}
    videos.update({f"video{n}": f"{shapes_roots['msrvtt']}/videos/all/video{n}.mp4"
                   for n in range(2, 12)})
    videos.update({"video12": bikes[: len(bikes) // 2],  # truncated mp4
                   "video13": b"",  # zero-byte file
                   "video14": b"hello, I am a text file named .mp4\n",
                   "video15": None})  # listed in the annotations, absent on disk
    return write_msrvtt(tmp_path, videos, captions_per_video=1)


BAD = {"video12": "truncated: the file ends at byte", "video13": "empty: zero-byte file",
       "video14": "not a video container: ", "video15": "missing: no such file"}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_each_bad_file_is_skipped_and_counted_while_the_rest_loads(corrupt_msrvtt, num_workers,
                                                                   caplog):
    env = DataEnv(max_skip_fraction=0.5)
    source = build_component(DATA_SOURCES, {"name": "msrvtt", "root": corrupt_msrvtt})
    loader = build_loader(source, env=env, **loader_kwargs(train=False, batch_size=5,
                                                           num_workers=num_workers))
    with caplog.at_level(logging.WARNING, logger="fcap.data"):
        batches = list(loader)
    loaded = sorted(i for b in batches for i in b["ids"])
    assert loaded == sorted(f"video{n}" for n in range(12))
    # the last batch (video15 alone) was all skipped: not yielded, but counted
    assert [len(b["ids"]) for b in batches] == [5, 5, 2]
    assert len(batches[-1]["skipped"]) == 3
    assert not any("video15" in p for b in batches for p, _ in b["skipped"])
    skipped = {p.rsplit("/", 1)[-1][:-4]: r for p, r in env.skips.offending("msrvtt/train")}
    assert set(skipped) == set(BAD)
    for vid, reason in BAD.items():
        assert skipped[vid].startswith(reason)
    stats = env.skips.summary()["msrvtt/train"]
    assert (stats["attempted"], stats["skipped"]) == (16, 4)
    assert stats["reasons"] == {"truncated": 1, "not a video container": 1, "empty": 1, "missing": 1}
    assert loader.skip_stats() == stats
    for vid in BAD:  # logged once each, with the path
        assert caplog.text.count(f"{vid}.mp4") == 1
    list(loader)  # a second pass counts again but does not log again
    assert env.skips.skipped("msrvtt/train") == 8
    assert caplog.text.count("video13.mp4") == 1


def test_above_max_skip_fraction_the_run_stops_listing_files(corrupt_msrvtt):
    env = DataEnv()  # default max_skip_fraction 0.05; 4 of 16 is 25 %
    source = build_component(DATA_SOURCES, {"name": "msrvtt", "root": corrupt_msrvtt})
    loader = build_loader(source, env=env, **loader_kwargs(train=False, batch_size=4))
    with pytest.raises(SkipLimitError) as info:
        list(loader)
    message = str(info.value)
    assert "data source msrvtt/train: 4 of 16 items (25.0%) could not be read, above " \
           "max_skip_fraction=0.05; first offending files:" in message
    for vid in BAD:
        assert f"{vid}.mp4" in message
    assert message.endswith("\nby reason: empty 1, missing 1, not a video container 1, truncated 1")


def test_limit_waits_for_enough_attempts_then_fires():
    stats = SkipStats(max_skip_fraction=0.05)
    stats.record("s", attempted=10, skipped=[("a.mp4", "missing: no such file")] * 5)  # 50 %
    with pytest.raises(SkipLimitError, match="5 of 60 items"):
        stats.record("s", attempted=50, skipped=[])
    ok = SkipStats(max_skip_fraction=0.1)
    ok.record("s", attempted=100, skipped=[("a.mp4", "empty: zero-byte file")] * 10)
    ok.check("s", pass_ended=True)  # exactly 10 % is not above the limit
    assert ok.summary()["s"]["fraction"] == 0.1


def test_skip_stats_survive_a_checkpoint():
    stats = SkipStats()
    stats.record("s", attempted=100, skipped=[("a.mp4", "empty: zero-byte file")])
    restored = SkipStats()
    restored.load_state_dict(stats.state_dict())
    assert restored.summary() == stats.summary()
