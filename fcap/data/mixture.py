"""Mixtures: each batch comes whole from one child source (Sec. 5.2).

The paper samples LAION with p = 0.95 and HowTo100M with p = 0.05, an image
batch ~8x the video batch, and lets each GPU choose independently: rank r
draws from a generator seeded by (seed, r). ``sync: true`` seeds it by seed
alone so every rank draws the same modality -- the ablation the paper found
very unstable. The generator state and each child's position are the
loader's state, so a restored mixture continues with the same batches.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np

from fcap.config.schema import Component, component
from fcap.data.errors import DataError
from fcap.data.items import LoaderSpec
from fcap.data.loader import BaseLoader, _check_state
from fcap.data.source import DataSource
from registry import DATA_SOURCES


@dataclass(frozen=True)
class MixtureChild:
    source: Component = component(DATA_SOURCES, required=True)  # {name: laion, root: ...}
    p: float = 1.0  # probability of drawing this child (normalised over children)
    batch_size: Optional[int] = None  # this child's batch size (None: build_loader's)

    def __post_init__(self) -> None:
        if self.p <= 0:
            raise ValueError(f"p must be > 0, got {self.p}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class MixtureConfig:
    children: list[MixtureChild] = field(default_factory=list)  # paper: laion 0.95, howto100m 0.05
    sync: bool = False  # all ranks draw the same child (paper: unstable; an ablation)

    def __post_init__(self) -> None:
        if not self.children:
            raise ValueError("children: a mixture needs at least one child")


class MixtureLoader(BaseLoader):
    """Draws a child per batch; never ends (training only)."""

    def __init__(self, children: list[BaseLoader], probs: list[float], *, spec: LoaderSpec,
                 env, sync: bool) -> None:
        super().__init__("mixture", "video", spec, env)
        self.children = children
        self.probs = np.asarray(probs, dtype=float) / float(sum(probs))
        self.sync = sync
        seed = [env.seed] if sync else [env.seed, env.rank]
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.draws = 0
        self._iters: list[Iterator[dict] | None] = [None] * len(children)

    def draw(self) -> int:
        """The next child index (advances the generator)."""
        self.draws += 1
        return int(self.rng.choice(len(self.children), p=self.probs))

    def batches(self, include_empty: bool = False) -> Iterator[dict]:
        while True:
            child = self.draw()
            if self._iters[child] is None:
                self._iters[child] = self.children[child].batches(include_empty)
            yield next(self._iters[child])

    def skip_stats(self) -> dict:
        return {c.name: c.skip_stats() for c in self.children}

    def clip_memory(self) -> dict | None:
        kept = [s for s in (c.clip_memory() for c in self.children) if s is not None]
        if not kept:
            return None
        return {key: sum(s[key] for s in kept) for key in kept[0]}

    def state_dict(self) -> dict:
        return {"kind": "mixture", "children_count": len(self.children), "sync": self.sync,
                "draws": self.draws, "rng": copy.deepcopy(self.rng.bit_generator.state),
                "children": [c.state_dict() for c in self.children]}

    def load_state_dict(self, state: dict) -> None:
        _check_state(self.name, state, kind="mixture", children_count=len(self.children),
                     sync=self.sync)
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.draws = int(state["draws"])
        for child, sub in zip(self.children, state["children"]):
            child.load_state_dict(sub)
        self._iters = [None] * len(self.children)  # restart children at their restored positions


@DATA_SOURCES.register("mixture", config=MixtureConfig)
class Mixture(DataSource):
    """Batches drawn from child sources with fixed probabilities (one modality per batch)."""

    name = "mixture"

    def __init__(self, cfg: MixtureConfig, *, env) -> None:
        super().__init__(cfg, env=env)
        self.children = [child.source.build(env=env) for child in cfg.children]

    def loader(self, spec: LoaderSpec, *, use_cache: bool = True) -> MixtureLoader:
        if not spec.train:
            raise DataError("data source 'mixture' is for training; evaluate on one source")
        loaders = [src.loader(spec.replace(batch_size=child.batch_size or spec.batch_size,
                                           split=None), use_cache=use_cache)
                   for src, child in zip(self.children, self.cfg.children)]
        return MixtureLoader(loaders, [c.p for c in self.cfg.children], spec=spec,
                             env=self.env, sync=self.cfg.sync)
