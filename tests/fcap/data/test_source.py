"""DataSource.needs names what each reader opens by name (the data preflight checks it)."""
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcap.data import DataEnv
from fcap.data.errors import DataError
from registry import DATA_SOURCES

CASES = [  # (source, root key in the world, options)
    ("msrvtt", "msrvtt", {"split": "val"}),
    ("msrvtt", "msrvtt", {"split": "test"}),
    ("msvd", "msvd", {"split": "train"}),
    ("howto100m", "howto100m", {"captions": "asr"}),
]


def build(name, root, **options):
    entry = DATA_SOURCES.get(name)
    return entry.obj(entry.config(root=str(root), **options), env=DataEnv(seed=0))


def needs(name, root, **options):
    entry = DATA_SOURCES.get(name)
    return entry.obj.needs(entry.config(root=str(root), **options), str(root), lambda p: p)


def copy_without(src: Path, dst: Path, left_out: Path) -> Path:
    """dst: src's entries linked, without ``left_out``."""
    dst.mkdir()
    for entry in src.iterdir():
        if entry != left_out:
            os.symlink(entry, dst / entry.name)
    return dst


@pytest.mark.parametrize("name,layout,options", CASES)
def test_a_complete_layout_has_what_needs_names(name, layout, options, shapes_roots):
    root = Path(shapes_roots[layout])
    named = needs(name, root, **options)
    assert named, "each built-in file reader names what it opens"
    for n in named:
        assert (os.path.isdir if n.folder else os.path.isfile)(n.path) and not n.missing(), n
    items = build(name, root, **options).items(options.get("split", "train"), train=False)
    for n in (n for n in named if n.folder):  # the folder the items' media are read from
        assert all(Path(i.path).parent == Path(n.path) for i in items), n


@pytest.mark.parametrize("name,layout,options", CASES)
def test_without_a_named_file_the_reader_fails_naming_it(name, layout, options, shapes_roots,
                                                        tmp_path):
    src = Path(shapes_roots[layout])
    for i, n in enumerate(n for n in needs(name, src, **options) if not n.folder):
        root = copy_without(src, tmp_path / f"r{i}", Path(n.path))
        with pytest.raises(DataError, match=str(root / Path(n.path).name)):
            build(name, root, **options)


def test_laion_names_its_jsonl_only_in_that_format(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "captions.jsonl").write_text('{"image": "a.png", "caption": "black"}\n')
    assert needs("laion", tmp_path, format="folder") == []
    (n,) = needs("laion", tmp_path, format="jsonl")
    assert (n.key, n.path, n.folder) == ("jsonl", str(tmp_path / "captions.jsonl"), False)
    assert len(build("laion", tmp_path, format="jsonl").items("train", train=False)) == 1
    os.remove(n.path)
    with pytest.raises(DataError, match=n.path):
        build("laion", tmp_path, format="jsonl")


def test_an_explicit_asr_file_is_read_where_needs_says(tmp_path, shapes_roots):
    entry = DATA_SOURCES.get("howto100m")
    cfg = entry.config(root=shapes_roots["howto100m"], captions="asr", caption_json="asr.json")
    (n,) = entry.obj.needs(cfg, cfg.root, lambda p: str(tmp_path / p))
    assert n.path == str(tmp_path / "asr.json")
    with pytest.raises(DataError, match=n.path):
        entry.obj(cfg, env=DataEnv(seed=0, data_root=str(tmp_path)))


def test_laion_webdataset_needs_a_tar_shard(tmp_path, shapes_roots):
    (n,) = needs("laion", shapes_roots["laion"])
    assert (n.key, n.glob, n.missing()) == ("format", "*.tar", None)
    assert len(build("laion", shapes_roots["laion"]).shards("train")) > 1
    (tmp_path / "00000.parquet").write_text("")  # img2dataset's parquet output, no shards
    (n,) = needs("laion", tmp_path)
    assert n.missing() == f"*.tar in {tmp_path}"
    with pytest.raises(DataError, match=f"no .tar shards in root {tmp_path}"):
        build("laion", tmp_path)
