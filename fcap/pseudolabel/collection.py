"""Which videos a pseudolabel run covers and which shard each one belongs to.

A collection is a folder in HowTo100M layout, ``<root>/<video_id>.<ext>``,
optionally restricted to the ids of a text file (one per line). An id whose
file is missing stays in the collection with ``path=None``: it is reported as
a failure rather than silently vanishing from the counts.
"""
from __future__ import annotations

import logging
from pathlib import Path

from fcap.data.errors import DataError
from fcap.data.media import VIDEO_EXTENSIONS
from fcap.pseudolabel.config import PseudolabelConfig

log = logging.getLogger("fcap.pseudolabel")


def videos_root(cfg: PseudolabelConfig) -> Path:
    """The collection folder: ``videos``, or the shapes world's ``howto100m/`` (generated once)."""
    if cfg.shapes is not None:
        from fcap.data.shapes import ensure_shapes_world

        return Path(ensure_shapes_world(cfg.shapes.root, cfg.shapes.world)["howto100m"])
    return Path(cfg.videos).expanduser()


def list_videos(cfg: PseudolabelConfig) -> dict[str, Path | None]:
    """``{video_id: path or None}`` sorted by id; DataError when there is nothing to label."""
    root = videos_root(cfg)
    if not root.is_dir():
        raise FileNotFoundError(f"pseudolabel: videos folder {str(root)!r} does not exist "
                                "(option 'videos')")
    exts = tuple(e.lower().lstrip(".") for e in cfg.extensions)
    found: dict[str, Path] = {}
    other: dict[str, int] = {}  # files left out, by extension
    folders: list[str] = []  # subfolders: not read (the layout is flat)
    for path in sorted(root.iterdir()):
        ext = path.suffix.lower().lstrip(".")
        if ext in exts:
            # A video file wins over a folder or a broken link of the same id (those are
            # kept when alone, to be listed as failures: nothing named as a video is left
            # out unseen), then the earlier extension of ``extensions``.
            prev = found.get(path.stem)
            if prev is None or _rank(path, exts) < _rank(prev, exts):
                found[path.stem] = path
        elif path.is_dir():
            if not path.name.startswith("."):
                folders.append(path.name)
        elif path.is_file() and not path.name.startswith("."):
            other[path.suffix.lower() or "(none)"] = other.get(path.suffix.lower() or "(none)", 0) + 1
    videos_left_out = {e: n for e, n in other.items() if e in VIDEO_EXTENSIONS}
    if videos_left_out:
        log.warning("pseudolabel: %s: left out %s files (not in option 'extensions': %s)", root,
                    _count_text(videos_left_out), ", ".join(exts))
    if folders and found:
        log.warning("pseudolabel: %s: %d folder(s) not read (%s%s): the videos lie directly in "
                    "it, <videos>/<video_id>.<ext> (HowTo100M layout)", root, len(folders),
                    ", ".join(folders[:3]), ", ..." if len(folders) > 3 else "")
    if cfg.ids is None:
        if not found:
            where = (f"none of its {sum(other.values())} files has an extension in option "
                     f"'extensions' ({', '.join(exts)}): {_count_text(other)}" if other
                     else "the folder holds no files")
            if folders:  # videos sorted into subfolders: the layout wants them flat
                where += (f", and {len(folders)} folder(s) ({', '.join(folders[:3])}"
                          f"{', ...' if len(folders) > 3 else ''}) that are not read: the videos "
                          f"lie directly in it, <videos>/<video_id>.<ext> (HowTo100M layout)")
            raise DataError(f"pseudolabel: no videos to label in {root} (option 'videos'): {where}")
        return dict(sorted(found.items()))
    ids_file = Path(cfg.ids).expanduser()
    if not ids_file.is_file():
        raise FileNotFoundError(f"pseudolabel: id list {str(ids_file)!r} does not exist (option 'ids')")
    ids = [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"pseudolabel: the id list {ids_file} (option 'ids') holds no ids")
    return {vid: found.get(vid) for vid in sorted(set(ids))}


def _rank(path: Path, exts: tuple[str, ...]) -> tuple[bool, int]:
    return (not path.is_file(), exts.index(path.suffix.lower().lstrip(".")))


def _count_text(by_ext: dict[str, int]) -> str:
    return ", ".join(f"{n} {ext}" for ext, n in sorted(by_ext.items(), key=lambda kv: (-kv[1], kv[0])))


def shard_of(position: int, num_shards: int) -> int:
    """Shard of the video at ``position`` in the sorted id list (round robin: sizes differ by <= 1)."""
    return position % num_shards


def shard_videos(videos: dict[str, Path | None], num_shards: int, shard_index: int) -> dict[str, Path | None]:
    """The videos of one shard, in id order."""
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, {num_shards}), got {shard_index}")
    ids = sorted(videos)
    return {vid: videos[vid] for i, vid in enumerate(ids) if shard_of(i, num_shards) == shard_index}


def shard_name(shard_index: int, num_shards: int) -> str:
    """``shard-00000-of-00004`` (docs/CONTRACTS.md)."""
    return f"shard-{shard_index:05d}-of-{num_shards:05d}"
