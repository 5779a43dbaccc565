"""Accounting for media that could not be read (nothing is lost silently).

Workers cannot share a counter with the main process, so a batch carries the
items it had to skip as ``batch["skipped"]`` (a list of ``(path, reason)``);
the loader in the main process hands them to :meth:`SkipStats.record` together
with the number of items it attempted. The trainer logs :meth:`summary`
(TensorBoard, run summary). A reason reads ``KIND: detail``
(fcap/data/media.py); counts and messages group by KIND. The pseudolabel
task applies the same budget to whole videos (fcap/pseudolabel/failures.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable

from fcap.data.errors import SkipLimitError

MIN_ITEMS_FOR_LIMIT = 50  # the fraction is not judged on fewer attempts (unless a pass ends)
_FIRST_KEPT = 20  # offending files kept per source for the error message


def reason_kind(reason: str) -> str:
    """What a reason is counted under: its text before the first ``:`` (``truncated``, ...)."""
    return reason.split(":", 1)[0].strip()


def count_kinds(reasons: Iterable[str]) -> dict[str, int]:
    """``{kind: count}`` of some reasons."""
    counts: dict[str, int] = {}
    for reason in reasons:
        kind = reason_kind(reason)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def format_kinds(counts: dict[str, int]) -> str:
    """``truncated 2, empty 1``: reason counts for a message, most frequent first."""
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def over_budget(failed: int, attempted: int, max_fraction: float) -> bool:
    """The budget rule: more than ``max_fraction`` of ``attempted`` failed."""
    return attempted > 0 and failed / attempted > max_fraction


@dataclass
class _Count:
    attempted: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    first: list[tuple[str, str]] = field(default_factory=list)


class SkipStats:
    """Per-source counts of attempted and skipped items; raises past the limit.

    ``max_skip_fraction``: a source whose skipped/attempted exceeds it stops
    the run with :class:`SkipLimitError` listing the first offending files.
    """

    def __init__(self, max_skip_fraction: float = 0.05,
                 logger: logging.Logger | None = None) -> None:
        if not 0.0 <= max_skip_fraction <= 1.0:
            raise ValueError(f"max_skip_fraction must be in [0, 1], got {max_skip_fraction}")
        self.max_skip_fraction = max_skip_fraction
        self.logger = logger or logging.getLogger("fcap.data")
        self._counts: dict[str, _Count] = {}
        self._logged: set[str] = set()

    def record(self, source: str, *, attempted: int, skipped: list[tuple[str, str]] = (),
               pass_ended: bool = False) -> None:
        """Count ``attempted`` items of ``source`` of which ``skipped`` failed."""
        count = self._counts.setdefault(source, _Count())
        count.attempted += attempted
        for path, reason in skipped:
            count.skipped += 1
            kind = reason_kind(reason)
            count.reasons[kind] = count.reasons.get(kind, 0) + 1
            if len(count.first) < _FIRST_KEPT:
                count.first.append((path, reason))
            if path not in self._logged:
                self._logged.add(path)
                self.logger.warning("data source %s: skipped %s (%s)", source, path, reason)
        self.check(source, pass_ended=pass_ended)

    def check(self, source: str, *, pass_ended: bool = False) -> None:
        count = self._counts.get(source)
        if count is None or count.attempted == 0:
            return
        if count.attempted < MIN_ITEMS_FOR_LIMIT and not pass_ended:
            return
        if over_budget(count.skipped, count.attempted, self.max_skip_fraction):
            listing = "\n".join(f"  - {p}: {r}" for p, r in count.first)
            raise SkipLimitError(
                f"data source {source}: {count.skipped} of {count.attempted} items "
                f"({count.skipped / count.attempted:.1%}) could not be read, above max_skip_fraction="
                f"{self.max_skip_fraction}; first offending files:\n{listing}\n"
                f"by reason: {format_kinds(count.reasons)}")

    def summary(self) -> dict[str, dict]:
        """``{source: {attempted, skipped, fraction, reasons}}`` (JSON-ready)."""
        return {
            name: {"attempted": c.attempted, "skipped": c.skipped,
                   "fraction": c.skipped / c.attempted if c.attempted else 0.0,
                   "reasons": dict(c.reasons)}
            for name, c in sorted(self._counts.items())
        }

    def offending(self, source: str) -> list[tuple[str, str]]:
        """The first (up to 20) skipped ``(path, reason)`` of ``source``."""
        return list(self._counts.get(source, _Count()).first)

    def skipped(self, source: str | None = None) -> int:
        if source is not None:
            return self._counts.get(source, _Count()).skipped
        return sum(c.skipped for c in self._counts.values())

    def state_dict(self) -> dict:
        return {name: {"attempted": c.attempted, "skipped": c.skipped,
                       "reasons": dict(c.reasons), "first": [list(x) for x in c.first]}
                for name, c in self._counts.items()}

    def load_state_dict(self, state: dict) -> None:
        self._counts = {name: _Count(s["attempted"], s["skipped"], dict(s["reasons"]),
                                     [tuple(x) for x in s["first"]])
                        for name, s in state.items()}
