"""Visual feature cache: the frozen encoder's outputs, written once, read instead of pixels.

Sec. 4: the visual encoder is frozen, so its outputs for a data source can be
computed once. Layout of a cache directory::

    index.json              key (encoder identity, frames, resolution, mean/std,
                            sampling), shape, shards, items {media_key: [shard, row]},
                            skipped {media_key: reason}
    features-00000.npy      float16 (rows, t, s, d), read memory-mapped
    mask-00000.npy          bool (rows, t): True = real frame

``index.json`` is written last: a cache without it is incomplete and refused.
A cache whose key differs from the run's, or that lacks an item of the source
(its annotations or clip windows changed), is refused, never silently used.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

import numpy as np
import torch

from fcap.data.errors import FeatureCacheError, MediaError
from fcap.data.items import Item, LoaderSpec, Modality
from fcap.io import claim_dir, write_text_atomic

CACHE_VERSION = 1
INDEX = "index.json"


def cache_key(*, encoder: Mapping[str, Any], modality: Modality, spec: LoaderSpec) -> dict:
    """Everything the cached values depend on besides the media themselves."""
    return {
        "version": CACHE_VERSION,
        "encoder": json.loads(json.dumps(dict(encoder), sort_keys=True, default=str)),
        "frames": spec.frames_for(modality),
        "image_size": spec.image_size,
        "mean": [round(v, 6) for v in spec.mean],
        "std": [round(v, 6) for v in spec.std],
        "sample_fps": None if modality == "image" else spec.sample_fps,
    }


class FeatureCache:
    """Reader of one cache directory; :meth:`get` is safe to call in workers."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        index = os.path.join(self.path, INDEX)
        if not os.path.isfile(index):
            raise FeatureCacheError(
                f"feature cache {self.path}: no {INDEX} (missing or extraction did not "
                "finish); run the extract_features task, or remove the source's "
                "'features:' option to encode pixels on the fly")
        try:
            with open(index) as f:
                self.index = json.load(f)
            self.key = self.index["key"]
            self.items: dict[str, list[int]] = self.index["items"]
            self.skipped: dict[str, str] = self.index.get("skipped", {})
            self.shards: list[dict] = self.index["shards"]
        except (ValueError, KeyError, TypeError) as err:
            raise FeatureCacheError(f"feature cache {index}: malformed ({err})") from None
        self._open: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def verify(self, expected: Mapping[str, Any], items: list[Item] | None = None) -> None:
        """Refuse a cache made with other settings, or one that lacks items of the source."""
        diffs = [f"{k}: cache has {self.key.get(k)!r}, this run wants {v!r}"
                 for k, v in expected.items() if self.key.get(k) != v]
        if diffs:
            raise FeatureCacheError(
                f"feature cache {self.path} was made with other settings and cannot be "
                "used:\n  " + "\n  ".join(diffs) +
                "\nre-run extract_features with this run's settings or point 'features:' "
                "at a matching cache")
        if items is not None:
            missing = [i.media_key for i in items
                       if i.media_key not in self.items and i.media_key not in self.skipped]
            if missing:
                raise FeatureCacheError(
                    f"feature cache {self.path} is stale: {len(missing)} of {len(items)} "
                    f"items of the source are not in it (first: {', '.join(missing[:5])}); "
                    "re-run extract_features")

    def _shard(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in self._open:
            meta = self.shards[i]
            self._open[i] = (np.load(os.path.join(self.path, meta["features"]), mmap_mode="r"),
                             np.load(os.path.join(self.path, meta["mask"]), mmap_mode="r"))
        return self._open[i]

    def get(self, item: Item) -> tuple[np.ndarray, np.ndarray]:
        """``(features (t, s, d) float16, mask (t,) bool)`` of ``item``."""
        where = self.items.get(item.media_key)
        if where is None:
            if item.media_key in self.skipped:
                raise MediaError(item.path, f"{self.skipped[item.media_key]} "
                                            "(found when the features were extracted)")
            raise FeatureCacheError(f"feature cache {self.path} is stale: no entry for "
                                    f"{item.media_key!r}; re-run extract_features")
        feats, mask = self._shard(where[0])
        return np.array(feats[where[1]]), np.array(mask[where[1]])

    def __getstate__(self) -> dict:  # workers reopen their own memory maps
        return {**self.__dict__, "_open": {}}


def extract_features(source: Any, *, out_dir: str, encode: Callable, encoder: Mapping[str, Any],
                     spec: LoaderSpec, env: Any = None, shard_rows: int = 4096) -> dict:
    """Encode every distinct clip of ``source`` (split ``spec.split``) into ``out_dir``.

    ``source``: a built data source, or a config Component built here with ``env``.

    ``encode(pixel_values, frame_mask) -> (b, t, s, d)`` is the frozen visual
    encoder; ``encoder`` its identity dict (model name, revision, ...). Items
    are read once each in evaluation order; unreadable ones are recorded as
    skipped. Returns a summary (counts, shape, path).
    """
    if hasattr(source, "build") and hasattr(source, "registry"):
        if env is None:
            raise ValueError("extract_features: pass env= to build a source from its config")
        source = source.build(env=env)
    out_dir = str(out_dir)
    # a new or empty folder, or one fcap marked: never a folder holding someone else's files
    claim_dir(out_dir, kind="feature cache", key="out_dir")
    if os.path.exists(os.path.join(out_dir, INDEX)):
        os.remove(os.path.join(out_dir, INDEX))  # invalid until this run finishes
    spec = spec.replace(train=False, encoder=None)
    loader = source.loader(spec, use_cache=False)
    items: dict[str, list[int]] = {}
    skipped: dict[str, str] = {}
    shards: list[dict] = []
    buf_f: list[np.ndarray] = []
    buf_m: list[np.ndarray] = []
    shape = None

    def flush() -> None:
        if not buf_f:
            return
        n = len(shards)
        meta = {"features": f"features-{n:05d}.npy", "mask": f"mask-{n:05d}.npy",
                "rows": len(buf_f)}
        np.save(os.path.join(out_dir, meta["features"]), np.stack(buf_f))
        np.save(os.path.join(out_dir, meta["mask"]), np.stack(buf_m))
        shards.append(meta)
        buf_f.clear()
        buf_m.clear()

    for batch in loader.batches(include_empty=True):
        for (_path, reason), key in zip(batch["skipped"], batch["skipped_keys"]):
            skipped.setdefault(key, reason)
        if not batch["ids"]:
            continue
        with torch.no_grad():
            out = encode(batch["pixel_values"], batch["frame_mask"])
        out = out.detach().to("cpu", torch.float16).numpy()
        if out.ndim != 4 or out.shape[0] != len(batch["ids"]):
            raise ValueError(f"extract_features: encode returned shape {out.shape}, expected "
                             f"(b={len(batch['ids'])}, t, s, d)")
        shape = list(out.shape[1:])
        for row, key in enumerate(batch["media_keys"]):
            if key in items:
                continue
            items[key] = [len(shards), len(buf_f)]
            buf_f.append(out[row])
            buf_m.append(batch["frame_mask"][row].numpy().astype(bool))
            if len(buf_f) >= shard_rows:
                flush()
    flush()
    index = {"key": cache_key(encoder=encoder, modality=loader.modality, spec=spec),
             "source": loader.name, "shape": shape, "dtype": "float16",
             "shards": shards, "items": items, "skipped": skipped}
    write_text_atomic(os.path.join(out_dir, INDEX), json.dumps(index))
    return {"path": out_dir, "items": len(items), "skipped": len(skipped),
            "shards": len(shards), "shape": shape}
