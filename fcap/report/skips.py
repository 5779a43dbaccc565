"""Items a stage skipped (unreadable media), next to the numbers they change.

A stage that reads data records ``summary["skips"]`` in its DONE.json:
``{source: {attempted, skipped, fraction, reasons: {kind: n}, examples: [[path, reason]]}}``
(``fcap.data.SkipStats``; caption_eval merges every rank's). A score computed on
fewer items than the split holds is a different number: the table marks it and
the section lists, per stage, how many were skipped and why.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from fcap.experiment import markers


@dataclass(frozen=True)
class Skips:
    """One stage's skipped items, over all its data sources."""

    attempted: int
    skipped: int
    reasons: dict[str, int] = field(default_factory=dict)  # kind -> count, over sources
    example: str = ""  # "path: reason" of one skipped item

    def why(self) -> str:
        """``unreadable 2, truncated 1`` (most frequent first)."""
        kinds = sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        return ", ".join(f"{kind} {n}" for kind, n in kinds)


def of_summary(summary: dict | None) -> Skips | None:
    """The skips a stage's summary records; None when it records none (no data read)."""
    per_source = (summary or {}).get("skips")
    if not isinstance(per_source, dict):
        return None
    attempted = skipped = 0
    reasons: dict[str, int] = {}
    example = ""
    for stats in per_source.values():
        attempted += int(stats.get("attempted", 0))
        skipped += int(stats.get("skipped", 0))
        for kind, n in (stats.get("reasons") or {}).items():
            reasons[kind] = reasons.get(kind, 0) + int(n)
        if not example and stats.get("examples"):
            path, reason = stats["examples"][0]
            example = f"{path}: {reason}"
    return Skips(attempted, skipped, reasons, example)


def of_run(run) -> Skips | None:
    """The skips of a completed run (None when not complete or nothing recorded)."""
    if not markers.is_complete(run):
        return None
    return of_summary((markers.read_done(run) or {}).get("summary"))


def cell_note(plan, variant: str, stage: str) -> str:
    """`` (2/100 skipped)`` for a table cell whose stage skipped items; '' otherwise."""
    try:
        skips = of_run(plan.get(variant, stage))
    except KeyError:
        return ""
    if skips is None or skips.skipped == 0:
        return ""
    return f" ({skips.skipped}/{skips.attempted} skipped)"


def section(plan) -> list[str]:
    """report.md's "Skipped items": one row per completed stage that read data."""
    rows = []
    for run in plan.own_runs():
        skips = of_run(run)
        if skips is None:
            continue
        done = (markers.read_done(run) or {}).get("summary") or {}
        scored = done.get("items")
        rows.append(f"| {run.key} | {run.task} | {'-' if scored is None else scored} | "
                    f"{skips.skipped} of {skips.attempted} | {skips.why() or '-'} | "
                    f"{skips.example.replace('|', '/') or '-'} |")
    if not rows:
        return []
    return ["## Skipped items", "",
            "Items that could not be read are left out of the stage's scores (and its "
            "training); a score with skips is marked `(skipped/attempted skipped)` in the table.",
            "", "| run | task | scored items | skipped | why | e.g. |", "|---|---|---|---|---|---|",
            *rows, ""]
