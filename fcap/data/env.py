"""DataEnv: what every data source gets besides its own options."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from fcap.data.skips import SkipStats


@dataclass
class DataEnv:
    """Process-wide data settings, shared by a source and its children.

    ``seed``/``rank``/``world_size`` drive shuffling, shard assignment and the
    mixture's draws; ``skips`` counts unreadable media for the whole run (log
    ``skips.summary()``); ``data_root`` resolves relative ``root:`` options.
    """

    seed: int = 0
    rank: int = 0
    world_size: int = 1
    max_skip_fraction: float = 0.05  # stop the run above this fraction of unreadable items
    data_root: str | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("fcap.data"))
    skips: SkipStats = None  # type: ignore[assignment]  # built from max_skip_fraction

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise ValueError(f"DataEnv: world_size must be >= 1, got {self.world_size}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"DataEnv: rank must be in [0, {self.world_size}), got {self.rank}")
        if self.skips is None:
            self.skips = SkipStats(self.max_skip_fraction, self.logger)

    def resolve(self, path: str | None) -> str | None:
        """``path`` with ``~`` expanded, relative to ``data_root`` when that is set."""
        if path is None or path == "":
            return path
        return under_root(path, self.data_root)


def is_relative(path: str) -> bool:
    """True when ``path`` (``~`` expanded) is relative: ``datasets.root`` then prefixes it."""
    return not os.path.isabs(os.path.expanduser(str(path)))


def under_root(path: str, data_root: str | None) -> str:
    """``path`` with ``~`` expanded, joined to ``data_root`` when relative and a root is set
    (how a relative ``root:`` of a source, or a label stage's ``videos:``, is read)."""
    path = os.path.expanduser(str(path))
    if data_root and not os.path.isabs(path):
        return os.path.join(os.path.expanduser(data_root), path)
    return path
