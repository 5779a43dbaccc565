"""Decoded clips kept in memory (datasets.clip_memory_mb): the same batches, fewer decodes."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from data_layouts import loader_kwargs
from fcap.config.schema import build_component
from fcap.data import DataEnv, build_loader
from fcap.data import items as items_module
from fcap.data.media import Clip
from fcap.data.memory import ClipMemory
from registry import DATA_SOURCES


def msrvtt(root):
    return build_component(DATA_SOURCES, {"name": "msrvtt", "root": root, "split": "train"})


@pytest.fixture
def count_decodes(monkeypatch):
    calls: list[str] = []
    real = items_module.read_clip

    def counted(path, **kw):
        calls.append(path)
        return real(path, **kw)

    monkeypatch.setattr(items_module, "read_clip", counted)
    return calls


def first_batches(root, n, **kw):
    loader = build_loader(msrvtt(root), env=DataEnv(seed=0), **loader_kwargs(**kw))
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == n:
            return loader, batches


def test_later_epochs_reuse_the_decoded_clips_and_give_the_same_batches(shapes_roots,
                                                                        count_decodes):
    root = shapes_roots["msrvtt"]
    _, plain = first_batches(root, 30)  # 24 train videos x 2 captions / 4: 12 batches an epoch
    decodes_without = len(count_decodes)
    count_decodes.clear()
    loader, kept = first_batches(root, 30, clip_memory_mb=16)
    for a, b in zip(plain, kept):
        assert a["ids"] == b["ids"] and a["captions"] == b["captions"]
        assert torch.equal(a["pixel_values"], b["pixel_values"])
        assert torch.equal(a["frame_mask"], b["frame_mask"])
    assert decodes_without == 120
    assert len(count_decodes) == 24  # each train video once: its two captions share the clip
    assert loader.clip_memory() == {"decoded": 24, "reused": 96}
    assert 0 < loader.memory.stats()["kept_mb"] <= 16 and loader.memory.stats()["evicted"] == 0


def test_with_workers_each_keeps_its_own_and_the_loader_counts_their_reads(shapes_roots):
    root = shapes_roots["msrvtt"]
    _, plain = first_batches(root, 24)
    loader, kept = first_batches(root, 24, num_workers=2, clip_memory_mb=16)
    for a, b in zip(plain, kept):
        assert a["ids"] == b["ids"] and torch.equal(a["pixel_values"], b["pixel_values"])
    counts = loader.clip_memory()
    # 2 epochs of 48 items; workers start afresh each epoch, so every video is decoded
    # again, but once for both its captions when both reach the same worker
    assert counts["decoded"] + counts["reused"] == 96
    assert counts["reused"] > 0 and counts["decoded"] >= 48


def test_without_a_budget_the_loader_keeps_nothing(shapes_roots):
    loader, _ = first_batches(shapes_roots["msrvtt"], 2)
    assert loader.clip_memory() is None


def test_the_budget_drops_the_least_recently_used_clip():
    memory = ClipMemory(1)  # 1 MiB: two 0.4 MiB clips fit, three do not
    clip = lambda: Clip(np.zeros((4, 256, 136, 3), np.uint8), 4)  # noqa: E731
    paths = [__file__, os.__file__, np.__file__]
    for path in paths[:2]:
        assert memory.read(path, (), clip)[1] is False
    _, reused = memory.read(paths[0], (), lambda: pytest.fail("kept: no decode"))
    assert reused is True  # paths[0] is now the most recent
    memory.read(paths[2], (), clip)  # drops paths[1]
    assert memory.stats() == {"decoded": 3, "reused": 1, "evicted": 1, "kept_mb": 0.8}
    decoded = []
    memory.read(paths[1], (), lambda: decoded.append(1) or clip())
    assert decoded == [1]


def test_a_clip_larger_than_the_budget_is_decoded_every_time():
    memory = ClipMemory(1)
    big = lambda: Clip(np.zeros((8, 512, 512, 3), np.uint8), 8)  # noqa: E731  (6 MiB)
    for _ in range(2):
        memory.read(__file__, (), big)
    assert memory.stats() == {"decoded": 2, "reused": 0, "evicted": 0, "kept_mb": 0.0}


def test_kept_frames_cannot_be_changed_by_a_later_reader():
    memory = ClipMemory(1)
    clip, _ = memory.read(__file__, (), lambda: Clip(np.zeros((1, 2, 2, 3), np.uint8), 1))
    with pytest.raises(ValueError):
        clip.frames[0, 0, 0, 0] = 1


def test_a_changed_file_is_decoded_again(tmp_path, real_videos):
    path = str(tmp_path / "v.mp4")
    shutil.copy(real_videos["bikes"], path)
    memory = ClipMemory(64)
    decoded = []
    decode = lambda: decoded.append(1) or Clip(np.zeros((1, 2, 2, 3), np.uint8), 1)  # noqa: E731
    memory.read(path, (4,), decode)
    memory.read(path, (4,), decode)
    memory.read(path, (8,), decode)  # another window of the same file
    assert decoded == [1, 1]
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    memory.read(path, (4,), decode)
    assert decoded == [1, 1, 1]


def test_an_unreadable_file_is_skipped_every_time_not_kept(shapes_roots, tmp_path):
    root = tmp_path / "msrvtt"
    shutil.copytree(shapes_roots["msrvtt"], root)
    videos = sorted((root / "videos").rglob("*.mp4"))
    videos[0].write_bytes(b"not a video" * 100)
    env = DataEnv(seed=0, max_skip_fraction=1.0)
    loader = build_loader(msrvtt(str(root)), env=env, **loader_kwargs(clip_memory_mb=16))
    seen = 0
    for _ in loader:
        seen += 1
        if seen == 24:  # two epochs
            break
    reasons = loader.skip_stats()
    assert reasons["skipped"] == 4  # the video's 2 captions, in each of the 2 epochs
    assert loader.clip_memory() == {"decoded": 23, "reused": 96 - 4 - 23}


def test_the_budget_must_not_be_negative(shapes_roots):
    from fcap.tasks.datasets import DatasetsConfig

    with pytest.raises(ValueError, match="clip_memory_mb must be >= 0, got -1"):
        build_loader(msrvtt(shapes_roots["msrvtt"]), env=DataEnv(seed=0),
                     **loader_kwargs(clip_memory_mb=-1))
    with pytest.raises(ValueError, match="clip_memory_mb must be >= 0, got -1"):
        DatasetsConfig(clip_memory_mb=-1)
