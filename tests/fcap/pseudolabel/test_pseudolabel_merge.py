"""merge: a complete, consistent shard set becomes the index the howto100m source reads."""
import json

import pytest

from fcap.pseudolabel.merge import MergeError, main, merge
from fcap.pseudolabel.shard import run_shard


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, videos_with_corrupt, captioner):
    """Shards 0..2 of 3 of the videos with a corrupt one (built once, copied per test)."""
    from fcap.config import from_dict
    from fcap.pseudolabel.config import PseudolabelConfig

    root, durations = videos_with_corrupt
    cfg = from_dict(PseudolabelConfig, {
        "videos": str(root), "captioner": {"name": "blip", "source": "tiny", "cpu_threads": 1},
        "frame_size": 64, "num_workers": 0, "num_shards": 3, "sampling": {"max_new_tokens": 6},
        "max_failure_fraction": 0.5})  # 2 of 7 videos are broken
    out = tmp_path_factory.mktemp("labelled")
    for i in range(3):
        run_shard(cfg, i, out, captioner=captioner)
    return out, durations


@pytest.fixture
def out(tmp_path, labelled):
    import shutil

    shutil.copytree(labelled[0], tmp_path / "out")
    return tmp_path / "out"


def test_merge_writes_sorted_records_and_index(out, labelled, count_clips):
    durations = labelled[1]
    index = merge(out)
    lines = (out / "pseudolabels.jsonl").read_text().splitlines()
    keys = [(json.loads(x)["video_id"], json.loads(x)["clip_index"]) for x in lines]
    expected = sorted((v, i) for v, d in durations.items() for i in range(count_clips(d, 8.0, 2.0)))
    assert keys == expected
    on_disk = json.loads((out / "index.json").read_text())
    assert on_disk["counts"] == index["counts"] == {
        "videos": len(durations) + 2, "videos_labelled": len(durations), "clips": len(expected),
        "failures": 2}
    assert sorted(f["video_id"] for f in on_disk["failures"]) == ["corrupt", "empty"]
    assert on_disk["collection"]["checked"] is True and len(on_disk["shards"]) == 3
    assert on_disk["captioner"]["weights_hash"] and on_disk["sampling"]["method"] == "nucleus"


def test_the_howto100m_source_reads_the_merged_file(out):
    from fcap.data.howto100m import read_pseudolabels

    merge(out)
    records = read_pseudolabels(str(out / "pseudolabels.jsonl"))
    assert len(records) == json.loads((out / "index.json").read_text())["counts"]["clips"]


def test_missing_shard_is_named(out):
    (out / "shards" / "shard-00001-of-00003.manifest.json").unlink()
    with pytest.raises(MergeError, match="1 of 3 shards not finished: shard-00001-of-00003"):
        merge(out)
    assert not (out / "pseudolabels.jsonl").exists()


def test_duplicate_and_missing_clips_are_found(out):
    path = next(p for p in sorted((out / "shards").glob("*.jsonl"))
                if "bikes" in p.read_text())
    lines = path.read_text().splitlines()
    bikes = [x for x in lines if json.loads(x)["video_id"] == "bikes"]
    rest = [x for x in lines if json.loads(x)["video_id"] != "bikes"]
    path.write_text("\n".join(rest + [bikes[0], bikes[0]]) + "\n")  # clip 1 lost, clip 0 twice
    with pytest.raises(MergeError) as err:
        merge(out)
    text = str(err.value)
    assert "clip 0 of bikes labelled twice" in text
    assert "video bikes: missing clips [1]" in text


def test_a_video_of_the_collection_in_no_shard_is_found(out, videos_with_corrupt):
    manifest = out / "shards" / "shard-00000-of-00003.manifest.json"
    data = json.loads(manifest.read_text())
    dropped = sorted(data["videos"])[0]
    del data["videos"][dropped]
    shard = out / "shards" / "shard-00000-of-00003.jsonl"
    shard.write_text("".join(x + "\n" for x in shard.read_text().splitlines()
                             if json.loads(x)["video_id"] != dropped))
    manifest.write_text(json.dumps(data))
    with pytest.raises(MergeError, match=f"1 videos of .* are in no shard: {dropped}"):
        merge(out)


def test_command_line(out, tmp_path, capsys):
    assert main([str(out), "--dest", str(tmp_path / "merged")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["failures"] == 2
    assert (tmp_path / "merged" / "pseudolabels.jsonl").is_file()
    assert main([str(tmp_path / "nothing")]) == 3
    assert "no finished shard" in capsys.readouterr().err
