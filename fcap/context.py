"""What a task gets besides its config: where to write and what it depends on."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StageContext:
    """The run of one stage of one variant.

    ``deps`` maps each stage this one depends on (``init_from`` and ``after``)
    to its run directory; ``init_from`` is that directory for the stage named
    in ``init_from`` (``None`` when the stage starts from scratch).
    """

    experiment: str
    variant: str
    stage: str
    run_dir: Path
    config_hash: str
    deps: dict[str, Path] = field(default_factory=dict)
    init_from: Path | None = None
    seed: int = 0
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("fcap"))
    resources: Any = None  # fcap.experiment.Resources of the stage
    extra: dict[str, Any] = field(default_factory=dict)  # launcher-specific (e.g. requeue count)

    @property
    def name(self) -> str:
        return f"{self.experiment}/{self.variant}/{self.stage}"
