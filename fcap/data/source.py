"""Base classes of data sources and the trainer's entry point :func:`build_loader`.

A registered data source is built as ``cls(cfg, *, env)`` and provides
``loader(spec, *, use_cache=True)``. Sources that list their items up front
subclass :class:`MapSource` and implement ``items(split, train=...)``; sources
streamed from tar shards subclass :class:`StreamSource` and implement
``shards()`` and ``read_shard(shard)``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from fcap.data.env import DataEnv, is_relative
from fcap.data.errors import DataError, FeatureCacheError, require_root
from fcap.data.features import FeatureCache, cache_key
from fcap.data.items import Item, LoaderSpec, Modality
from fcap.data.loader import BaseLoader, MapLoader
from fcap.data.stream import StreamLoader
from fcap.data.transform import as_stats


class Needed(NamedTuple):
    """A file or folder a source opens by name when it starts."""

    key: str  # the option naming it ('split', 'descriptions', 'videos', ...)
    path: str
    folder: bool  # a folder, else a file
    what: str  # what it holds, for the message
    glob: str | None = None  # a folder that must hold at least one entry matching this

    def missing(self) -> str | None:
        """What is not there ('file X', 'folder X', '*.tar in X'), or None."""
        if self.glob is not None:
            found = os.path.isdir(self.path) and any(Path(self.path).glob(self.glob))
            return None if found else f"{self.glob} in {self.path}"
        there = os.path.isdir(self.path) if self.folder else os.path.isfile(self.path)
        return None if there else f"{'folder' if self.folder else 'file'} {self.path}"


class DataSource:
    """Common options: ``root`` (dataset directory), ``split``, ``features`` (cache dir)."""

    name: str = "?"  # registry name, set by each subclass
    modality: Modality = "video"
    splits: tuple[str, ...] = ("train",)

    def __init__(self, cfg: Any, *, env: DataEnv) -> None:
        self.cfg = cfg
        self.env = env

    @classmethod
    def needs(cls, cfg: Any, root: str, resolve: Callable[[str], str]) -> list[Needed]:
        """The files and folders under ``root`` (the source's folder) this config makes the
        source open by name when it starts; ``resolve`` reads a path option as the source
        does (relative to ``datasets.root``). The data preflight checks that they exist
        before anything is queued (fcap/experiment/preflight.py); the readers still report
        a missing one when the stage starts. Default: nothing beyond ``root``."""
        return []

    @classmethod
    def read_annotations(cls, cfg: Any, root: str) -> None:
        """Read the annotation files this config opens at start-up (never the media) and
        raise their reader's error (``AnnotationError``) when one cannot be used. The data
        preflight calls it once every file of :meth:`needs` is there, so a malformed MSR-VTT
        file stops ``fcap-run`` before a day of pretraining, not when fine-tuning starts.
        Default: nothing (a source whose annotations are large, HowTo100M's ASR captions or
        a LAION jsonl, is read when its stage starts)."""

    @classmethod
    def input_files(cls, cfg: Any, root: str, resolve: Callable[[str], str]) -> dict[str, str]:
        """``{option: path}`` of the files this config reads that a run makes (another
        experiment's pseudolabels, a file the user rewrites when labelling again), as
        :meth:`needs` resolves them. DONE.json records their content, as it does a
        ``{from: STAGE}`` reference's (fcap/experiment/inputs.py): a complete stage runs
        again when one changed. Default: none (a dataset's own files do not change)."""
        return {}

    def root(self) -> str:
        given = getattr(self.cfg, "root", None)
        path = self.env.resolve(given)
        if given and is_relative(given) and not os.path.isdir(path):
            if self.env.data_root:
                raise DataError(f"data source '{self.name}': no folder {path} (key 'root' = "
                                f"{given!r} under datasets.root = {self.env.data_root!r}); "
                                f"datasets.root must hold the {self.name} dataset in its layout "
                                "(fcap/data/README.md)")
            raise DataError(f"data source '{self.name}': key 'root' = {given!r} is relative and "
                            f"datasets.root is not set, so it was looked for in the working "
                            f"folder {os.getcwd()}: not a directory there. Set datasets.root "
                            f"(the folder holding {given}/) or an absolute root")
        return require_root(self.name, path)

    def split_of(self, spec: LoaderSpec) -> str:
        split = spec.split or getattr(self.cfg, "split", None) or self.splits[0]
        if split not in self.splits:
            raise DataError(f"data source '{self.name}': key 'split' = {split!r} is not "
                            f"allowed; allowed: {', '.join(self.splits)}")
        return split

    def label(self, split: str) -> str:
        """Name used in logs and skip counts."""
        return f"{self.name}/{split}" if len(self.splits) > 1 else self.name

    def feature_cache(self, spec: LoaderSpec, items: list[Item] | None) -> FeatureCache | None:
        """The cache named by ``features:``, verified against this run, or None."""
        path = self.env.resolve(getattr(self.cfg, "features", None))
        if not path:
            return None
        if spec.encoder is None:
            raise FeatureCacheError(
                f"data source '{self.name}': key 'features' = {path!r} is set but the "
                "training task passed no encoder identity to build_loader(encoder=...), "
                "so the cache cannot be checked; refusing to use it")
        cache = FeatureCache(path)
        cache.verify(cache_key(encoder=spec.encoder, modality=self.modality, spec=spec), items)
        return cache

    def loader(self, spec: LoaderSpec, *, use_cache: bool = True) -> BaseLoader:
        raise NotImplementedError


class MapSource(DataSource):
    """A source whose items are known at start-up (annotations parsed then)."""

    def items(self, split: str, *, train: bool) -> list[Item]:
        raise NotImplementedError

    def loader(self, spec: LoaderSpec, *, use_cache: bool = True) -> MapLoader:
        split = self.split_of(spec)
        items = self.items(split, train=spec.train)
        features = self.feature_cache(spec, items) if use_cache else None
        return MapLoader(self.label(split), items, modality=self.modality,
                         spec=spec.replace(split=split), env=self.env, features=features)


class StreamSource(DataSource):
    """A source streamed from shards (too large to list)."""

    def shards(self, split: str) -> list[str]:
        raise NotImplementedError

    def read_shard(self, shard: str) -> Iterable[Item]:
        raise NotImplementedError

    def loader(self, spec: LoaderSpec, *, use_cache: bool = True) -> StreamLoader:
        split = self.split_of(spec)
        features = self.feature_cache(spec, None) if use_cache else None
        return StreamLoader(self.label(split), self.shards(split), self.read_shard,
                            modality=self.modality, spec=spec.replace(split=split),
                            env=self.env, features=features)


def build_loader(source: Any, *, env: DataEnv, split: str | None = None, train: bool,
                 batch_size: int, num_workers: int = 2, image_size: int,
                 mean: Sequence[float], std: Sequence[float], num_frames: int,
                 sample_fps: float | None = None, encoder: Mapping[str, Any] | None = None,
                 pin_memory: bool | None = None, prefetch_factor: int = 2,
                 clip_memory_mb: int = 0) -> BaseLoader:
    """The loader the trainer iterates (see fcap/data/README.md).

    ``source``: a config :class:`~fcap.config.schema.Component` of
    ``DATA_SOURCES`` (built here with ``env``) or a built source.
    ``split=None`` uses the source's ``split:`` option. ``encoder``: the visual
    encoder's identity dict, required when the source reads a feature cache.
    ``clip_memory_mb``: decoded clips a map loader keeps for later epochs
    (fcap/data/memory.py; 0: decode every read).
    """
    if hasattr(source, "build") and hasattr(source, "registry"):
        source = source.build(env=env)
    spec = LoaderSpec(split=split, train=train, batch_size=batch_size, num_workers=num_workers,
                      image_size=image_size, mean=as_stats(mean), std=as_stats(std),
                      num_frames=num_frames, sample_fps=sample_fps, pin_memory=pin_memory,
                      prefetch_factor=prefetch_factor, clip_memory_mb=clip_memory_mb,
                      encoder=dict(encoder) if encoder is not None else None)
    return source.loader(spec)
