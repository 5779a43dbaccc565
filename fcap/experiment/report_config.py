"""The ``report:`` block of an experiment file: which numbers form its table and plots.

Read by :mod:`fcap.report`, which lays them out in report.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Column:
    """One table column: a metric read from a stage's metrics.json (or summary)."""

    stage: str  # the stage whose outputs hold the number (e.g. evaluate)
    metric: str  # key in <run_dir>/metrics.json, e.g. CIDEr
    label: str = ""  # column header; default "<stage> <metric>"
    scale: float = 1.0  # multiply before printing (pycocoevalcap CIDEr 0.54 -> 54.0)
    source: str = "metrics"  # "metrics" (metrics.json) or "summary" (summary.json)
    digits: int = 1  # decimals printed (a loss of 0.7xx needs 3; a count of steps 0)

    def __post_init__(self) -> None:
        if self.source not in ("metrics", "summary"):
            raise ValueError(f"source must be 'metrics' or 'summary', got {self.source!r}")
        if not 0 <= self.digits <= 6:
            raise ValueError(f"digits must be 0..6, got {self.digits}")


@dataclass(frozen=True)
class Control:
    """A control row: a variant's columns read from another of its stages (e.g. the same
    model scored on shuffled frames), mean ± std over its seeds like any row."""

    variant: str  # the variant (seeds grouped) the row belongs to
    stage: str  # the stage read instead
    label: str = ""  # row label; default "<variant> (<stage>)"
    instead_of: str = ""  # the columns' stage it replaces; default: the first column's


@dataclass(frozen=True)
class ReportConfig:
    """How ``fcap-run report`` lays out an experiment's results beside the paper's."""

    title: str = ""
    columns: tuple[Column, ...] = ()
    # variant -> the paper's number for each column (None where the paper has none); empty:
    # the table and the bars have no paper column
    paper: dict[str, tuple[Optional[float], ...]] = field(default_factory=dict)
    # variant -> the row's label in the paper's layout (e.g. "ASR")
    row_labels: dict[str, str] = field(default_factory=dict)
    bars: bool = False  # also draw the first column as bars (ours, and the paper's if given)
    plots: tuple[str, ...] = ("loss", "gates")  # curves from each training stage's scalars
    notes: str = ""  # printed under the table (e.g. what the tiny profile can and cannot show)
    controls: tuple[Control, ...] = ()  # extra rows after the variants' (no paper numbers)

    def __post_init__(self) -> None:
        unknown = [p for p in self.plots if p not in ("loss", "gates", "lr", "grad_norm")]
        if unknown:
            raise ValueError(f"plots: unknown {unknown}; allowed: loss, gates, lr, grad_norm")
        for variant, row in self.paper.items():
            if len(row) != len(self.columns):
                raise ValueError(f"paper.{variant}: {len(row)} numbers for "
                                 f"{len(self.columns)} columns")
