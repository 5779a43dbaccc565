"""The ``datasets:`` block of a stage and the loaders it builds (``fcap.data`` + the encoder's image spec).

Shared by every task that reads data: how sources are rooted, how many items may
be skipped, how clips are sampled and cropped for the model's visual encoder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from fcap.config.schema import run_option
from fcap.data import DataEnv, ShapesWorldConfig, build_loader, ensure_shapes_world
from fcap.data.shapes import world_root
from fcap.train.distributed import DistInfo


@dataclass(frozen=True)
class DatasetsConfig:
    """How every data source of a stage is read (``fcap.data.DataEnv`` + loader options).

    Usually a shared top-level ``datasets:`` block of the experiment.
    """

    root: Optional[str] = None  # relative source `root:`s resolve against this directory
    # Synthetic stand-in for the real datasets (tiny profile): when set, the shapes world
    # is generated once in the fcap cache (fcap/cache.py, never under `root`, which must
    # then be null) and becomes the root, holding msrvtt/, msvd/, howto100m/, laion/ in
    # the real layouts.
    shapes_world: Optional[ShapesWorldConfig] = None
    max_skip_fraction: float = 0.05  # stop above this fraction of unreadable items per source
    num_workers: int = 2  # DataLoader worker processes per rank
    num_frames: Optional[int] = None  # frames per clip; None: the visual encoder's own
    sample_fps: Optional[float] = None  # None: frames uniform over the clip window
    # crop side in pixels (paper: 224 pretraining; 320-384 fine-tuning helps, Sec. 6);
    # None: the visual encoder's own image size
    image_size: Optional[int] = None
    # multiplies an explicit image_size (the tiny profile fits the paper's crops to its
    # 32-px encoder); the encoder's own size is never scaled
    image_scale: float = 1.0
    # MB of decoded clips each loader process keeps for the next epochs (fcap/data/memory.py):
    # the same frames, no decoding again; pays for small sets read with num_workers 0
    clip_memory_mb: int = run_option(0)

    def __post_init__(self) -> None:
        if self.root and self.shapes_world is not None:
            raise ValueError(
                f"root: {self.root!r} is set together with shapes_world (the tiny profile's "
                "synthetic data). fcap generates the shapes world in its cache, never under "
                "datasets.root; to read the datasets at this root drop shapes_world (e.g. "
                "--profile paper, or datasets.shapes_world=null), to run the tiny profile "
                "drop datasets.root")
        if self.root and not Path(self.root).expanduser().is_dir():
            raise ValueError(f"root: dataset directory not found: {self.root} (it must hold the "
                             "datasets' folders, e.g. howto100m/, laion/, msrvtt/, msvd/)")
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {self.image_size}")
        if self.image_scale <= 0:
            raise ValueError(f"image_scale must be > 0, got {self.image_scale}")
        if not 0.0 <= self.max_skip_fraction <= 1.0:
            raise ValueError(f"max_skip_fraction must be in [0, 1], got {self.max_skip_fraction}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.clip_memory_mb < 0:
            raise ValueError(f"clip_memory_mb must be >= 0, got {self.clip_memory_mb}")
        if self.num_frames is not None and self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.sample_fps is not None and self.sample_fps <= 0:
            raise ValueError(f"sample_fps must be > 0, got {self.sample_fps}")


def data_root(cfg: DatasetsConfig) -> str | None:
    """``cfg.root``, or the generated shapes world's directory when ``shapes_world`` is set."""
    if cfg.shapes_world is None:
        return cfg.root
    root = world_root(None, cfg.shapes_world)  # the fcap cache (root is null: __post_init__)
    ensure_shapes_world(root, cfg.shapes_world)  # once; a file lock serialises ranks
    return root


def image_size(cfg: DatasetsConfig, spec) -> int:
    """The crop side fed to the encoder: ``image_size * image_scale``, or the encoder's own."""
    if cfg.image_size is None:
        return spec.image_size
    return max(1, round(cfg.image_size * cfg.image_scale))


def data_env(cfg: DatasetsConfig, *, seed: int, info: DistInfo, logger) -> DataEnv:
    """This rank's view of the data: its shard, the skip budget and the resolved root."""
    return DataEnv(seed=seed, rank=info.rank, world_size=info.world_size,
                   max_skip_fraction=cfg.max_skip_fraction, data_root=data_root(cfg), logger=logger)


def loader_for(source: Any, *, datasets: DatasetsConfig, env: DataEnv, spec, encoder: dict,
               train: bool, batch_size: int, split: str | None = None):
    """``fcap.data.build_loader`` with the stage's ``datasets:`` options and the encoder's image spec."""
    return build_loader(source, env=env, split=split, train=train, batch_size=batch_size,
                        num_workers=datasets.num_workers, image_size=image_size(datasets, spec),
                        mean=spec.mean, std=spec.std,
                        num_frames=datasets.num_frames or spec.num_frames,
                        sample_fps=datasets.sample_fps, encoder=encoder,
                        clip_memory_mb=datasets.clip_memory_mb)


def skip_counts(env: DataEnv) -> dict[str, float]:
    """Totals over every source (the same keys on every rank, for all-reduces)."""
    summary = env.skips.summary()
    return {"skipped_items": float(sum(s["skipped"] for s in summary.values())),
            "attempted_items": float(sum(s["attempted"] for s in summary.values()))}
