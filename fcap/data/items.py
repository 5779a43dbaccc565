"""Items (what a source lists), the loader spec, and turning items into batches.

An :class:`Item` names media and captions without decoding anything; workers
turn it into pixels (or cached features) with :func:`load_item` and
:func:`collate` builds the batch of docs/CONTRACTS.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import torch

from fcap.data.errors import MediaError
from fcap.data.media import Clip, read_clip, read_image
from fcap.data.memory import ClipMemory
from fcap.data.transform import Preprocess

Modality = Literal["image", "video"]


@dataclass(frozen=True)
class Item:
    """One training pair or evaluation video, before decoding.

    ``captions``: one caption for a training pair; every reference for an
    evaluation item. ``start``/``end``: the clip window in seconds (None =
    whole video). ``media_key``: identifies the pixels (file + window), the
    key of the feature cache; relative to the dataset root so a cache moves
    with its data. ``data``: the encoded image bytes for streamed sources.
    """

    id: str
    path: str
    modality: Modality
    captions: tuple[str, ...]
    media_key: str
    start: float | None = None
    end: float | None = None
    data: bytes | None = field(default=None, repr=False, compare=False)
    error: str | None = None  # known unreadable (e.g. a damaged shard): skipped with this reason


@dataclass(frozen=True)
class LoaderSpec:
    """How to load: everything :func:`fcap.data.build_loader` takes besides the source."""

    split: str | None
    train: bool
    batch_size: int
    num_workers: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    num_frames: int  # frames per video clip (images are 1 frame)
    sample_fps: float | None = None  # None: uniform over the clip window; else frames at this rate
    pin_memory: bool | None = None  # None: when CUDA is available
    prefetch_factor: int = 2  # batches prefetched per worker
    encoder: Mapping[str, Any] | None = None  # visual encoder identity, to match a feature cache
    clip_memory_mb: int = 0  # decoded clips a map loader keeps (fcap/data/memory.py); 0: none

    def __post_init__(self) -> None:
        for name in ("batch_size", "num_frames", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"build_loader: {name} must be >= 1, got {getattr(self, name)}")
        if self.clip_memory_mb < 0:
            raise ValueError(f"build_loader: clip_memory_mb must be >= 0, got {self.clip_memory_mb}")
        if self.num_workers < 0:
            raise ValueError(f"build_loader: num_workers must be >= 0, got {self.num_workers}")

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess(self.image_size, self.mean, self.std)

    def frames_for(self, modality: Modality) -> int:
        return 1 if modality == "image" else self.num_frames

    def replace(self, **changes: Any) -> "LoaderSpec":
        import dataclasses

        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Skipped:
    """An item a worker could not read."""

    path: str
    reason: str
    media_key: str


def load_item(item: Item, spec: LoaderSpec, features: Any = None,
              memory: ClipMemory | None = None) -> dict | Skipped:
    """Decode one item (or read its cached features, or its clip kept in ``memory``); a
    bad file becomes :class:`Skipped`."""
    if item.error is not None:
        return Skipped(item.path, item.error, item.media_key)
    reused = None  # with a memory: whether the clip came from it
    try:
        if features is not None:
            feats, mask = features.get(item)
            return {"item": item, "visual_features": torch.from_numpy(feats).float(),
                    "frame_mask": torch.from_numpy(mask)}
        if item.modality == "image":
            clip = read_image(item.data if item.data is not None else item.path, path=item.path)
        else:
            def decode() -> Clip:
                return read_clip(item.path, num_frames=spec.num_frames, start=item.start,
                                 end=item.end, sample_fps=spec.sample_fps)

            if memory is None:
                clip = decode()
            else:
                clip, reused = memory.read(
                    item.path, (spec.num_frames, item.start, item.end, spec.sample_fps), decode)
    except MediaError as err:
        return Skipped(err.path, err.reason, item.media_key)
    pixels = spec.preprocess(clip.frames)
    mask = torch.arange(pixels.shape[0]) < clip.n_real
    out = {"item": item, "pixel_values": pixels, "frame_mask": mask}
    if reused is not None:
        out["reused"] = reused
    return out


def collate(samples: list[dict | Skipped], modality: Modality) -> dict:
    """The batch of docs/CONTRACTS.md, plus ``skipped``: [(path, reason)] for accounting
    (``skipped_keys``, ``media_keys``: the feature-cache keys of skipped and good items).

    ``captions`` holds each item's first caption (the training text);
    ``references`` all of them (evaluation). A batch whose items were all
    skipped has empty ``ids`` and no tensors; loaders do not yield it.
    """
    good = [s for s in samples if not isinstance(s, Skipped)]
    batch: dict[str, Any] = {
        "ids": [s["item"].id for s in good],
        "media_keys": [s["item"].media_key for s in good],
        "captions": [s["item"].captions[0] if s["item"].captions else "" for s in good],
        "references": [list(s["item"].captions) for s in good],
        "modality": modality,
        "skipped": [(s.path, s.reason) for s in samples if isinstance(s, Skipped)],
        "skipped_keys": [s.media_key for s in samples if isinstance(s, Skipped)],
    }
    kept = [s["reused"] for s in good if "reused" in s]
    if kept:  # a loader with a clip memory (fcap/data/memory.py) counts these
        batch["clips_reused"] = sum(kept)
        batch["clips_decoded"] = len(kept) - sum(kept)
    if good:
        key = "visual_features" if "visual_features" in good[0] else "pixel_values"
        batch[key] = torch.stack([s[key] for s in good])
        batch["frame_mask"] = torch.stack([s["frame_mask"] for s in good]).bool()
    return batch
