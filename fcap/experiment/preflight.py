"""Before anything runs or is queued: the dataset folders the selected runs read exist.

``datasets.root`` itself is checked when the config is validated. The folders under it
are read only when a stage starts, which on a cluster is after the label array and the
queue: a missing ``laion/`` failed the LAION variants hours after submitting. Checked
here for the selected runs only (``--only asr`` does not need ``laion/``):

- a data source's relative ``root:`` under ``datasets.root`` (``root: laion``), at any
  depth (a mixture's children);
- a label stage's ``videos:`` given as a path (relative ones already resolved against
  ``datasets.root`` by the planner); one given as ``{from: STAGE}`` is another stage's
  output and is not there yet.

A run already complete with this config (skipped unless ``--force``) reads nothing: a
finished pretraining does not need ``laion/`` to be evaluated again.

The tiny profile's world (``datasets.root`` null) is generated when a stage starts.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator

from fcap.config.errors import ConfigError, Problem
from fcap.config.schema import Component
from fcap.experiment import markers
from registry import DATA_SOURCES


def check_data(plan, *, force: bool = False) -> None:
    """A DataError listing every missing folder and the selected runs that read it."""
    from fcap.data.env import is_relative, under_root  # fcap.data loads torch: not at import
    from fcap.data.errors import DataError

    missing: dict[str, dict[str, None]] = {}  # folder -> dotted keys (ordered)
    readers: dict[str, list[str]] = {}  # folder -> run keys
    for run in plan.selected:
        if not force and markers.is_complete(run):
            continue
        datasets = getattr(run.cfg, "datasets", None)
        root = getattr(datasets, "root", None)
        found = [(f"{key}.root", under_root(given, root))
                 for key, given in (_source_roots(run.cfg) if root else ()) if is_relative(given)]
        videos = ((run.resolved.get("stages") or {}).get(run.stage) or {}).get("videos")
        if isinstance(videos, str) and videos:
            found.append(("videos", run.cfg.videos))
        for key, folder in found:
            if not os.path.isdir(folder):
                missing.setdefault(folder, {})[f"stages.{run.stage}.{key}"] = None
                if run.key not in readers.setdefault(folder, []):
                    readers[folder].append(run.key)
    if missing:  # a data error (exit 3), like the same folder missing when a stage starts
        raise DataError(str(ConfigError([_problem(plan, folder, list(keys), readers[folder])
                                         for folder, keys in missing.items()],
                                        title=f"missing data for {plan.source}")))


def _problem(plan, folder: str, keys: list[str], runs: list[str]) -> Problem:
    shown = ", ".join(runs[:3]) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")
    where = "" if os.path.isabs(folder) else (
        f" in the working folder {os.getcwd()} (datasets.root is not set: set it to the folder "
        f"holding {folder}/, or give an absolute path)")
    return Problem(str(plan.source), ", ".join(keys), (
        f"no folder {folder}{where}, read by {shown}: put the dataset there in its layout "
        f"(fcap/data/README.md), or leave those runs out (--only / --stages)"))


def _source_roots(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, root) of every data source in a config, nested ones included."""
    if isinstance(value, Component):
        if value.registry is DATA_SOURCES and isinstance(getattr(value.cfg, "root", None), str):
            yield key, value.cfg.root
        value = value.cfg
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _source_roots(getattr(value, f.name), f"{key}.{f.name}" if key else f.name)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _source_roots(item, f"{key}[{i}]")
