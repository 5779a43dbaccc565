"""``extract_features``: cache the frozen visual encoder's outputs (Sec. 4: frozen vision).

Wraps ``fcap.data.extract_features``; a later stage reads the cache by setting
``features: <dir>`` on its data source (the cache key ties it to this encoder,
frame count and preprocessing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from fcap.config import component
from fcap.data import DataEnv, LoaderSpec, extract_features as extract
from fcap.io import write_json_atomic
from fcap.models import ModelConfig
from fcap.tasks.datasets import DatasetsConfig, data_root, image_size
from fcap.train import distributed
from registry import DATA_SOURCES, TASKS


@dataclass(frozen=True, kw_only=True)
class ExtractFeaturesConfig:
    model: ModelConfig = field(default_factory=ModelConfig)  # only model.visual is built
    data: Any = component(DATA_SOURCES, required=True)
    datasets: DatasetsConfig = field(default_factory=DatasetsConfig)
    split: Optional[str] = None  # None: the source's own split option
    out_dir: Optional[str] = None  # None: <run_dir>/features
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@TASKS.register("extract_features", config=ExtractFeaturesConfig,
                outputs={"features": "features", "summary": "summary.json"})
def extract_features(cfg: ExtractFeaturesConfig, ctx) -> dict:
    """Encode every clip of a split once; rank 0 works, other ranks wait."""
    info = distributed.setup()
    try:
        summary: dict = {}
        if info.is_main:
            summary = _extract(cfg, ctx, info)
        distributed.barrier(info)
        return summary
    finally:
        distributed.teardown(info)


def _extract(cfg: ExtractFeaturesConfig, ctx, info) -> dict:
    visual = cfg.model.visual.build()
    device = distributed.device(info)
    visual.to(device).eval()
    spec = visual.spec
    out_dir = Path(cfg.out_dir).expanduser() if cfg.out_dir else Path(ctx.run_dir) / "features"
    # One process over the whole split (fcap.data's contract), whatever the world size.
    env = DataEnv(seed=ctx.seed, rank=0, world_size=1, data_root=data_root(cfg.datasets),
                  max_skip_fraction=cfg.datasets.max_skip_fraction, logger=ctx.logger)
    loader_spec = LoaderSpec(split=cfg.split, train=False, batch_size=cfg.batch_size,
                             num_workers=cfg.datasets.num_workers,
                             image_size=image_size(cfg.datasets, spec),
                             mean=spec.mean, std=spec.std,
                             num_frames=cfg.datasets.num_frames or spec.num_frames,
                             sample_fps=cfg.datasets.sample_fps)

    @torch.no_grad()
    def encode(pixel_values, frame_mask):
        return visual.encode(pixel_values.to(device), frame_mask)

    summary = dict(extract(cfg.data, out_dir=str(out_dir), encode=encode, encoder=visual.identity(),
                           spec=loader_spec, env=env))
    summary["out_dir"] = str(out_dir)
    write_json_atomic(ctx.run_dir / "summary.json", summary)
    return summary
