"""LAION reader: img2dataset webdataset shards (streamed), folder and JSONL variants."""
from __future__ import annotations

import json

import numpy as np
import pytest

from data_layouts import image_bytes, loader_kwargs, write_tar
from fcap.config.schema import build_component
from fcap.data import AnnotationError, DataEnv, DataError, build_loader
from registry import DATA_SOURCES


def laion(root, **options):
    return build_component(DATA_SOURCES, {"name": "laion", "root": str(root), **options})


@pytest.fixture
def real_shards(tmp_path, real_images):
    """4 shards of 3 samples each, cycling through the real photos."""
    photos = list(real_images.items())
    for shard in range(4):
        samples = []
        for k in range(3):
            name, array = photos[(shard * 3 + k) % len(photos)]
            key = f"{shard:05d}{k:04d}"
            samples.append((key, {".jpg": image_bytes(array), ".txt": f"a photo of {name}".encode(),
                                  ".json": json.dumps({"key": key}).encode()}))
        write_tar(tmp_path / f"{shard:05d}.tar", samples)
        (tmp_path / f"{shard:05d}_stats.json").write_text("{}")
    return tmp_path


def test_webdataset_images_are_one_frame_videos(real_shards, env):
    loader = build_loader(laion(real_shards), env=env, **loader_kwargs(train=False, batch_size=3))
    batches = list(loader)
    assert [len(b["ids"]) for b in batches] == [3, 3, 3, 3]
    first = batches[0]
    assert first["modality"] == "image"
    assert first["pixel_values"].shape == (3, 1, 3, 32, 32)
    assert first["frame_mask"].tolist() == [[True]] * 3
    assert first["ids"] == ["000000000", "000000001", "000000002"]
    assert first["captions"] == ["a photo of astronaut", "a photo of coffee", "a photo of chelsea"]


def ids_seen(root, *, rank, world_size, num_workers, train):
    env = DataEnv(seed=5, rank=rank, world_size=world_size)
    loader = build_loader(laion(root), env=env,
                          **loader_kwargs(train=train, batch_size=1, num_workers=num_workers))
    if train:  # one epoch of a training stream: 12 samples / world_size
        it = iter(loader)
        return [i for _ in range(12 // world_size) for i in next(it)["ids"]]
    return [i for b in loader for i in b["ids"]]


@pytest.mark.parametrize("train", [False, True])
def test_shards_split_across_ranks_and_workers_without_overlap(real_shards, train):
    seen = [ids_seen(real_shards, rank=r, world_size=2, num_workers=2, train=train)
            for r in range(2)]
    assert len(seen[0]) == len(seen[1]) == 6
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0]) | set(seen[1])) == 12
    # every shard is read whole by one rank
    for ids in seen:
        assert len({i[:5] for i in ids}) == 2


def test_too_few_shards_for_ranks(real_shards):
    with pytest.raises(DataError, match=r"4 shard\(s\) cannot feed 8 ranks without overlap"):
        build_loader(laion(real_shards), env=DataEnv(rank=0, world_size=8), **loader_kwargs())


def test_no_shards_in_root(tmp_path, env):
    with pytest.raises(DataError, match=r"no .tar shards in root"):
        laion(tmp_path).build(env=env)


def test_damaged_image_and_damaged_shard_are_counted(real_shards, env, real_images):
    write_tar(real_shards / "00001.tar", [
        ("000010000", {".jpg": b"not a jpeg", ".txt": b"broken"}),
        ("000010001", {".jpg": image_bytes(real_images["rocket"]), ".txt": b"a rocket"})])
    data = (real_shards / "00002.tar").read_bytes()
    (real_shards / "00002.tar").write_bytes(data[: len(data) // 3])
    env.skips.max_skip_fraction = 1.0
    loader = build_loader(laion(real_shards), env=env, **loader_kwargs(train=False, batch_size=3))
    batches = list(loader)
    skipped = [s for b in batches for s in b["skipped"]]
    assert [s[0].rsplit("/", 1)[-1] for s in skipped] == ["00001.tar#000010000.jpg",
                                                         "00002.tar"]
    assert skipped[0][1].startswith("unreadable: PIL cannot decode it")
    assert skipped[1][1].startswith("unreadable: damaged tar shard")
    assert "a rocket" in [c for b in batches for c in b["captions"]]
    assert loader.skip_stats()["skipped"] == 2


def test_folder_variant(tmp_path, env, real_images):
    for k, (name, array) in enumerate(real_images.items()):
        folder = tmp_path / f"{k // 2:05d}"
        folder.mkdir(exist_ok=True)
        (folder / f"{k:09d}.jpg").write_bytes(image_bytes(array))
        (folder / f"{k:09d}.txt").write_text(f"a photo of {name}\n")
    loader = build_loader(laion(tmp_path, format="folder"), env=env,
                          **loader_kwargs(train=False, batch_size=8))
    batch = next(iter(loader))
    assert batch["ids"] == ["00000/000000000", "00000/000000001", "00001/000000002",
                            "00001/000000003"]
    assert batch["captions"][3] == "a photo of rocket"
    (tmp_path / "00001" / "000000003.txt").unlink()
    with pytest.raises(AnnotationError, match=r"000000003.jpg: no caption file beside it"):
        laion(tmp_path, format="folder").build(env=env)


def test_jsonl_variant(tmp_path, env, real_images):
    (tmp_path / "img").mkdir()
    lines = []
    for name, array in real_images.items():
        (tmp_path / "img" / f"{name}.png").write_bytes(image_bytes(array, "PNG"))
        lines.append(json.dumps({"image": f"img/{name}.png", "caption": name}))
    (tmp_path / "captions.jsonl").write_text("\n".join(lines) + "\n")
    loader = build_loader(laion(tmp_path, format="jsonl"), env=env,
                          **loader_kwargs(train=False, batch_size=8, image_size=64))
    batch = next(iter(loader))
    assert batch["captions"] == list(real_images)
    assert batch["pixel_values"].shape == (4, 1, 3, 64, 64)
    assert np.isfinite(batch["pixel_values"].numpy()).all()
    (tmp_path / "captions.jsonl").write_text('{"image": "img/a.png"}\n')
    with pytest.raises(AnnotationError, match=r"captions.jsonl: line 1: missing key 'caption'"):
        laion(tmp_path, format="jsonl").build(env=env)


def test_shapes_world_in_laion_layout(shapes_roots, env):
    loader = build_loader(laion(shapes_roots["laion"]), env=env,
                          **loader_kwargs(batch_size=8, num_workers=2))
    it = iter(loader)
    batches = [next(it) for _ in range(3)]
    assert all(b["pixel_values"].shape == (8, 1, 3, 32, 32) for b in batches)
    assert all(c.startswith("a ") for b in batches for c in b["captions"])
