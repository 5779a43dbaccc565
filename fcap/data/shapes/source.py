"""The ``shapes`` data source: the synthetic world read through a real dataset reader."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal, Optional

from fcap.data.howto100m import Howto100m, Howto100mConfig
from fcap.data.laion import Laion, LaionConfig
from fcap.data.msrvtt import Msrvtt, MsrvttConfig
from fcap.data.msvd import Msvd, MsvdConfig
from fcap.data.shapes.world import TRUTH, ShapesWorldConfig, ensure_shapes_world
from fcap.data.source import DataSource
from registry import DATA_SOURCES


@dataclass(frozen=True)
class ShapesConfig:
    root: Optional[str] = None  # where the world is generated once and cached; None: the fcap cache
    layout: Literal["msrvtt", "msvd", "howto100m", "laion"] = "msrvtt"  # which reader reads it
    split: Literal["train", "val", "test"] = "train"  # msrvtt and msvd layouts
    captions: Literal["pseudolabel", "asr"] = "pseudolabel"  # howto100m layout (pseudolabel: truth/)
    window_seconds: float = 8.0  # howto100m layout, captions: asr
    features: Optional[str] = None  # visual feature cache directory
    world: ShapesWorldConfig = field(default_factory=ShapesWorldConfig)


@DATA_SOURCES.register("shapes", config=ShapesConfig)
class Shapes(DataSource):
    """Synthetic coloured shapes moving over backgrounds, in a real dataset's layout."""

    name = "shapes"

    def __init__(self, cfg: ShapesConfig, *, env) -> None:
        super().__init__(cfg, env=env)
        # root None: the shared cache folder (fcap.data.shapes.world_root)
        self.roots = ensure_shapes_world(env.resolve(cfg.root), cfg.world,
                                         key="root (data source 'shapes')")
        where, features = self.roots[cfg.layout], env.resolve(cfg.features)
        if cfg.layout == "msrvtt":
            self.reader = Msrvtt(MsrvttConfig(root=where, split=cfg.split, features=features),
                                 env=env)
        elif cfg.layout == "msvd":
            self.reader = Msvd(MsvdConfig(root=where, split=cfg.split, features=features), env=env)
        elif cfg.layout == "howto100m":
            # captions: pseudolabel reads the generator's own clip captions (truth/), since a
            # HowTo100M layout holds no pseudolabels; an experiment uses {from: merge} instead
            truth = os.path.join(os.path.dirname(where), TRUTH, "howto100m.jsonl")
            self.reader = Howto100m(Howto100mConfig(root=where, captions=cfg.captions,
                                                    pseudolabels=truth,
                                                    window_seconds=cfg.window_seconds,
                                                    features=features), env=env)
        else:
            self.reader = Laion(LaionConfig(root=where, features=features), env=env)
        self.reader.name = f"shapes-{cfg.layout}"
        self.modality = self.reader.modality
        self.splits = self.reader.splits

    def loader(self, spec, *, use_cache: bool = True):
        return self.reader.loader(spec, use_cache=use_cache)
