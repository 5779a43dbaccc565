"""The numbers a report reads from finished runs: table cells and per-step scalars."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fcap.experiment import markers


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_scalars(run_dir: Path) -> list[dict]:
    """The trainer's per-step scalars (``metrics.jsonl``), [] when absent."""
    path = run_dir / "metrics.jsonl"
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def stage_metrics(plan, variant: str, stage: str, source: str = "metrics") -> dict:
    """A finished run's ``metrics.json`` (or its DONE summary); {} when absent or not done."""
    try:
        run = plan.get(variant, stage)
    except KeyError:
        return {}
    if not markers.is_complete(run):
        return {}
    if source == "summary":
        return (markers.read_done(run) or {}).get("summary") or {}
    return _read_json(run.run_dir / "metrics.json") or {}


def cell(plan, variant: str, column) -> float | None:
    """One number of the table: ``column.metric`` of ``column.stage`` in ``variant``."""
    value = stage_metrics(plan, variant, column.stage, column.source).get(column.metric)
    return None if value is None else float(value) * column.scale
