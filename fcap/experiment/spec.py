"""The experiment file's own keys, stage blocks and per-stage resources."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from dataclasses import field

from fcap.config import component
from fcap.report.spec import ReportConfig
from registry import LAUNCHERS

# Keys that belong to the experiment itself; every other top-level key is a
# shared block (``model:``, ``optimizer:``, ...) merged into each stage whose
# task config has a field of that name.
EXPERIMENT_KEYS = (
    "name", "description", "plugins", "stages", "variants", "grid", "output_root",
    "launcher", "seed", "variant", "report",
)
# Keys of a stage block handled by fcap itself (the rest is the task's config).
STAGE_KEYS = ("task", "init_from", "after", "resources", "once")
# Run directory name of ``once: true`` stages (run once, shared by every variant).
ONCE_VARIANT = "all_variants"
# Profile-only key: overlays keyed by task name, applied to every stage running that task.
PROFILE_TASKS_KEY = "tasks"


@dataclass(frozen=True)
class Resources:
    """What one stage asks a cluster for (ignored by the local launcher but ``nproc``)."""

    nodes: int = 1
    gpus_per_node: int = 0  # 0: a CPU job
    tasks_per_node: Optional[int] = None  # processes per node; default max(1, gpus_per_node)
    cpus_per_task: int = 2
    mem_gb: Optional[float] = None  # per node; None: the cluster's default
    time_min: int = 60  # wall-clock limit, minutes
    array: Optional[int] = None  # job array size (one element per shard), None: no array
    max_requeues: int = 3  # preemptions / time limits survived by requeueing

    def __post_init__(self) -> None:
        for name in ("nodes", "cpus_per_task", "time_min"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.gpus_per_node < 0:
            raise ValueError(f"gpus_per_node must be >= 0, got {self.gpus_per_node}")
        if self.tasks_per_node is not None and self.tasks_per_node < 1:
            raise ValueError(f"tasks_per_node must be >= 1, got {self.tasks_per_node}")
        if self.array is not None and self.array < 1:
            raise ValueError(f"array must be >= 1, got {self.array}")

    @property
    def ntasks_per_node(self) -> int:
        return self.tasks_per_node or max(1, self.gpus_per_node)

    @property
    def world_size(self) -> int:
        return self.nodes * self.ntasks_per_node


@dataclass(frozen=True)
class ExperimentHeader:
    """The experiment file's own keys (``stages``/``variants``/``grid`` are checked separately)."""

    name: str
    description: str = ""
    plugins: tuple[str, ...] = ()  # module names or .py files (relative to the YAML file)
    output_root: str = "runs"  # runs land in <output_root>/<name>/<variant>/<stage>/
    launcher: Any = component(LAUNCHERS, "local")
    seed: int = 0
    variant: Optional[str] = None  # set in resolved configs: the variant directory name
    report: ReportConfig = field(default_factory=ReportConfig)  # layout of report.md

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"name must be a non-empty string without '/', got {self.name!r}")
