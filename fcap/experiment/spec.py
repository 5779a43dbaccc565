"""The experiment file's own keys, stage blocks and per-stage resources."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from fcap.config import component
from fcap.experiment.report_config import ReportConfig
from registry import LAUNCHERS, TASKS

# Keys that belong to the experiment itself; every other top-level key is a
# shared block (``model:``, ``optimizer:``, ...) merged into each stage whose
# task config has a field of that name.
EXPERIMENT_KEYS = (
    "name", "description", "plugins", "stages", "variants", "grid", "output_root",
    "launcher", "seed", "seeds", "variant", "report",
)
# Keys of a stage block handled by fcap itself (the rest is the task's config).
STAGE_KEYS = ("task", "init_from", "after", "resources", "once")
# Run directory name of ``once: true`` stages (run once, shared by every variant).
ONCE_VARIANT = "all_variants"
DEFAULT_LAUNCHER = "local"  # the launcher of a file without launcher.name
# Profile-only key: overlays keyed by task name, applied to every stage running that task.
PROFILE_TASKS_KEY = "tasks"

# Experiment, variant and stage names become directories, SLURM job names and words
# of generated shell scripts, so they keep to characters no shell or path treats
# specially. Variant names fcap composes from a grid ('lr=0.001,gate=vector') may
# also hold '=' and ',' (see fcap/experiment/variants.py); users never write those.
NAME_CHARS = "letters, digits, '_', '.' and '-', starting with a letter, digit or '_'"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_GENERATED_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=,-]*")


def name_problem(name: Any, *, generated: bool = False) -> str | None:
    """Why ``name`` cannot name an experiment, variant or stage; None when it can.

    ``generated``: a variant name fcap composed (grid values, ``variant:`` of a
    resolved config), which may also contain '=' and ','.
    """
    pattern, chars = (_GENERATED_NAME, NAME_CHARS + " (and '=' ',' in grid names)") \
        if generated else (_NAME, NAME_CHARS)
    if isinstance(name, str) and pattern.fullmatch(name):
        return None
    return f"must be {chars}, got {name!r}"


def control_char(text: str) -> str | None:
    """The first control character (line break, tab, ...) in ``text``, as ``repr``; None if none.

    Such a character cannot be quoted on an ``#SBATCH`` line: a newline ends the
    comment and what follows runs as a command.
    """
    bad = next((c for c in text if ord(c) < 32 or ord(c) == 127), None)
    return None if bad is None else repr(bad)


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
    launcher: Any = component(LAUNCHERS, DEFAULT_LAUNCHER)
    seed: int = 0
    seeds: Optional[int] = None  # repeat every variant with seeds seed .. seed+seeds-1 (report: mean ± std)
    variant: Optional[str] = None  # set in resolved configs: the variant directory name
    report: ReportConfig = field(default_factory=ReportConfig)  # layout of report.md

    def __post_init__(self) -> None:
        bad = name_problem(self.name)
        if bad:
            raise ValueError(f"name {bad}")
        bad = control_char(self.output_root)
        if bad:
            raise ValueError(f"output_root must not contain control characters such as line "
                             f"breaks (it is written into sbatch scripts), got {bad} in "
                             f"{self.output_root!r}")


def task_fields(doc: dict) -> set[str]:
    """The config fields of the tasks of ``doc``'s stages: the top-level keys it may share."""
    out: set[str] = set()
    for block in (doc.get("stages") or {}).values():
        task = block.get("task") if isinstance(block, dict) else None
        config = TASKS.get(task).config if isinstance(task, str) and task in TASKS else None
        if config is not None and dataclasses.is_dataclass(config):
            out |= {f.name for f in dataclasses.fields(config)}
    return out
