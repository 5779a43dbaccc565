"""LAION image-text pairs, as written by img2dataset (Sec. 5.2: sampled with p = 0.95).

``format: webdataset`` (streamed; shards split across ranks and workers)::

    <root>/00000.tar, 00001.tar, ...   each holding KEY.jpg, KEY.txt (caption), KEY.json
                                        (img2dataset's _stats.json / .parquet are ignored)

``format: folder`` (img2dataset's ``files`` output)::

    <root>/00000/KEY.jpg + KEY.txt, ...

``format: jsonl``::

    <root>/<jsonl>        one {"image": <path relative to root>, "caption": str} per line

An image becomes a 1-frame video. A sample whose image cannot be decoded is
skipped and counted; a damaged tar is counted once as a skipped item.
"""
from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from typing import Iterator, Literal, Optional

from fcap.data.annotations import read_jsonl, require_keys
from fcap.data.errors import AnnotationError, DataError
from fcap.data.items import Item
from fcap.data.source import MapSource, Needed, StreamSource
from registry import DATA_SOURCES

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


@dataclass(frozen=True)
class LaionConfig:
    root: Optional[str] = None  # dataset directory (layouts in fcap/data/laion.py)
    format: Literal["webdataset", "folder", "jsonl"] = "webdataset"
    jsonl: str = "captions.jsonl"  # format jsonl: the file under root
    features: Optional[str] = None  # visual feature cache directory


def _split_key(name: str) -> tuple[str, str]:
    """webdataset convention: the key is the name up to the first dot of its basename."""
    folder, base = os.path.split(name)
    stem, _, ext = base.partition(".")
    return os.path.join(folder, stem), "." + ext.lower()


def read_tar(path: str) -> Iterator[Item]:
    """Items of one img2dataset tar shard, in stored order."""
    shard = os.path.basename(path)

    def item(key: str, files: dict[str, bytes]) -> Item | None:
        image = next((ext for ext in IMAGE_EXTENSIONS if ext in files), None)
        if image is None:
            return None
        caption = files.get(".txt", b"").decode("utf-8", errors="replace").strip()
        return Item(key, f"{path}#{key}{image}", "image", (caption,),
                    f"{os.path.splitext(shard)[0]}/{key}", data=files[image])

    key, files = None, {}
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                k, ext = _split_key(member.name)
                if k != key and key is not None:
                    out = item(key, files)
                    if out is not None:
                        yield out
                    files = {}
                key = k
                files[ext] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as err:
        yield Item(f"{shard}:damaged", path, "image", ("",), f"{shard}:damaged",
                   error=f"unreadable: damaged tar shard ({err})")
        return
    if key is not None:
        out = item(key, files)
        if out is not None:
            yield out


@DATA_SOURCES.register("laion", config=LaionConfig)
class Laion(MapSource, StreamSource):
    """LAION image-caption pairs (webdataset shards, a folder, or a JSONL list)."""

    name = "laion"
    modality = "image"
    splits = ("train",)

    @classmethod
    def needs(cls, cfg: LaionConfig, root: str, resolve) -> list[Needed]:
        if cfg.format == "webdataset":
            return [Needed("format", root, True, "img2dataset's webdataset shards (format: "
                           "webdataset; format: folder or jsonl for the other layouts)",
                           glob="*.tar")]
        if cfg.format != "jsonl":
            return []
        return [Needed("jsonl", os.path.join(root, cfg.jsonl), False,
                       '{"image": <path relative to root>, "caption": str} per line')]

    def __init__(self, cfg: LaionConfig, *, env) -> None:
        super().__init__(cfg, env=env)
        self._root = self.root()
        if cfg.format == "webdataset":
            self._shards = sorted(os.path.join(self._root, n) for n in os.listdir(self._root)
                                  if n.endswith(".tar"))
            if not self._shards:
                raise DataError(f"data source 'laion': no .tar shards in root {self._root} "
                                "(format: webdataset; use format: folder or jsonl otherwise)")
        else:
            self._items = self._read_folder() if cfg.format == "folder" else self._read_jsonl()

    def loader(self, spec, *, use_cache: bool = True):
        if self.cfg.format == "webdataset":
            return StreamSource.loader(self, spec, use_cache=use_cache)
        return MapSource.loader(self, spec, use_cache=use_cache)

    def shards(self, split: str) -> list[str]:
        return list(self._shards)

    def read_shard(self, shard: str) -> Iterator[Item]:
        return read_tar(shard)

    def items(self, split: str, *, train: bool) -> list[Item]:
        return list(self._items)

    def _read_folder(self) -> list[Item]:
        items, bare = [], []
        for folder, _dirs, names in sorted(os.walk(self._root)):
            for name in sorted(names):
                stem, ext = os.path.splitext(name)
                if ext.lower() not in IMAGE_EXTENSIONS:
                    continue
                txt = os.path.join(folder, stem + ".txt")
                if not os.path.isfile(txt):
                    bare.append(os.path.join(folder, name))
                    continue
                with open(txt, encoding="utf-8", errors="replace") as f:
                    caption = f.read().strip()
                rel = os.path.relpath(os.path.join(folder, stem), self._root)
                items.append(Item(rel, os.path.join(folder, name), "image", (caption,), rel))
        if bare:
            raise AnnotationError(bare[0], f"no caption file beside it ({len(bare)} image(s) "
                                           "without KEY.txt under root; format: folder)")
        if not items:
            raise DataError(f"data source 'laion': no images with captions under {self._root}")
        return items

    def _read_jsonl(self) -> list[Item]:
        path = os.path.join(self._root, self.cfg.jsonl)
        items = []
        for number, r in read_jsonl(path, what='{"image": <relative path>, "caption": str} '
                                               'per line'):
            require_keys(path, f"line {number}", r, {"image": str, "caption": str})
            items.append(Item(r["image"], os.path.join(self._root, r["image"]), "image",
                              (r["caption"].strip(),), r["image"]))
        if not items:
            raise AnnotationError(path, "no records")
        return items
