"""Listing a collection and assigning videos to shards."""
import pytest

from fcap.pseudolabel.collection import list_videos, shard_name, shard_videos
from fcap.pseudolabel.config import PseudolabelConfig


def _touch(root, *names):
    for name in names:
        (root / name).write_bytes(b"x")


def test_lists_video_files_by_id_preferring_the_first_extension(tmp_path):
    _touch(tmp_path, "b.webm", "a.mp4", "b.mp4", "c.mkv", "notes.txt", "caption.json")
    found = list_videos(PseudolabelConfig(videos=str(tmp_path)))
    assert list(found) == ["a", "b", "c"]
    assert found["b"].name == "b.mp4"


def test_a_folder_or_broken_link_named_as_a_video_is_listed_to_fail_and_subfolders_warned(
        tmp_path, caplog):
    _touch(tmp_path, "a.mp4", "b.webm")
    (tmp_path / "b.mp4").mkdir()          # the file b.webm wins over a folder b.mp4
    (tmp_path / "c.mp4").mkdir()
    (tmp_path / "d.mp4").symlink_to(tmp_path / "gone.mp4")
    (tmp_path / "more").mkdir()
    with caplog.at_level("WARNING", logger="fcap.pseudolabel"):
        found = list_videos(PseudolabelConfig(videos=str(tmp_path)))
    assert {k: v.name for k, v in found.items()} == {"a": "a.mp4", "b": "b.webm", "c": "c.mp4",
                                                      "d": "d.mp4"}
    assert "1 folder(s) not read (more)" in caplog.text


def test_id_list_restricts_and_keeps_missing_ids_as_none(tmp_path):
    _touch(tmp_path, "a.mp4", "b.mp4")
    ids = tmp_path / "ids.txt"
    ids.write_text("b\n\nzz\n")
    found = list_videos(PseudolabelConfig(videos=str(tmp_path), ids=str(ids)))
    assert list(found) == ["b", "zz"] and found["zz"] is None


def test_missing_folder_error_names_the_option(tmp_path):
    with pytest.raises(FileNotFoundError, match="option 'videos'"):
        list_videos(PseudolabelConfig(videos=str(tmp_path / "nope")))


def test_shards_partition_the_collection_evenly():
    videos = {f"v{i:02d}": None for i in range(10)}
    parts = [shard_videos(videos, 3, i) for i in range(3)]
    assert sorted(v for p in parts for v in p) == sorted(videos)
    assert sorted(len(p) for p in parts) == [3, 3, 4]
    assert parts == [shard_videos(videos, 3, i) for i in range(3)]  # deterministic
    assert shard_name(2, 16) == "shard-00002-of-00016"
    with pytest.raises(ValueError, match=r"shard_index must be in \[0, 3\), got 3"):
        shard_videos(videos, 3, 3)
