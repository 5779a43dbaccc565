"""The experiment's table: one row per variant (mean ± std over its seeds), control rows,
attribute columns, and which rows the seeds' spread can tell apart."""
from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, replace

from fcap.data.shapes.attributes import ATTRIBUTES, AXIS
from fcap.experiment.variants import seed_group
from fcap.report import skips
from fcap.report.data import cell, stage_metrics

SEPARATION = 2.0  # rows whose means differ by less than this many std are "not separated"


@dataclass(frozen=True)
class Row:
    label: str
    members: tuple[str, ...]  # the variant runs (one per seed) the row averages
    swap: tuple[tuple[str, str], ...] = ()  # (column stage, stage read instead): control rows


def rows_of(plan, *, per_seed: bool = False) -> list[Row]:
    """Each variant's row (seeds grouped unless ``per_seed``), then the report's control rows."""
    cfg = plan.header.report
    groups: dict[str, list[str]] = {}
    for variant in plan.variants():
        groups.setdefault(variant if per_seed else seed_group(variant), []).append(variant)
    rows = []
    for name, members in groups.items():
        label = cfg.row_labels.get(name)
        if label is None:  # one seed of a labelled variant: "Alpha (a,seed=1)"
            group = cfg.row_labels.get(seed_group(name))
            label = name if group is None else f"{group} ({name})"
        rows.append(Row(label, tuple(members)))
    for control in cfg.controls:
        members = tuple(v for v in plan.variants() if seed_group(v) == control.variant
                        or v == control.variant)
        instead = control.instead_of or (cfg.columns[0].stage if cfg.columns else "")
        label = control.label or f"{control.variant} ({control.stage})"
        swap = ((instead, control.stage),)
        if per_seed and len(members) > 1:  # one row per seed, as the variants' rows above
            rows += [Row(f"{label} ({v})", (v,), swap=swap) for v in members]
        else:
            rows.append(Row(label, members, swap=swap))
    return rows


def columns_of(plan) -> list:
    """The report's columns, then per-attribute accuracy wherever a column's stage scored it
    (the ``attributes`` metric: the shapes world only; never on real data) and no column
    of the report shows it already."""
    cols = list(plan.header.report.columns)
    extra, seen = [], set()
    scoring = [c for c in cols if c.source == "metrics"]
    several = len({c.stage for c in scoring}) > 1  # Table 2: MSVD and MSR-VTT
    for col in scoring:
        if col.stage in seen:
            continue
        seen.add(col.stage)
        asked = {c.metric for c in cols if c.stage == col.stage}  # a column of its own already
        scored = [a for a in (*ATTRIBUTES, AXIS) if a not in asked
                  and any(a in stage_metrics(plan, v, col.stage) for v in plan.variants())]
        name = (col.label or col.stage) if several else ""
        extra += [replace(col, metric=a, label=f"{name} {a}".strip(), scale=1.0) for a in scored]
    return cols + extra


def values(plan, row: Row, col) -> list[float | None]:
    """The column's number in each of the row's runs (None: not done)."""
    stage = dict(row.swap).get(col.stage, col.stage)
    return [cell(plan, v, replace(col, stage=stage)) for v in row.members]


def table_rows(plan, *, per_seed: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows: the paper's number beside ours for each report column (when the
    report gives any: ``paper:``); attribute columns after them; several seeds as mean ± std
    (n)."""
    cfg = plan.header.report
    cols = columns_of(plan)
    beside = [col in cfg.columns and bool(cfg.paper) for col in cols]  # a paper column next to it
    head = ["variant"]
    for col, paired in zip(cols, beside):
        label = col.label or f"{col.stage} {col.metric}"
        head += [f"{label} (ours)", f"{label} (paper)"] if paired else [label]
    out = []
    for row in rows_of(plan, per_seed=per_seed):
        paper = cfg.paper.get(seed_group(row.members[0]), ()) if row.members and not row.swap else ()
        text = [row.label]
        for i, col in enumerate(cols):
            vals = values(plan, row, col)
            digits = col.digits if col in cfg.columns else 2
            if len(vals) == 1:
                note = skips.cell_note(plan, row.members[0], col.stage) if not row.swap else ""
                text.append("-" if vals[0] is None else f"{vals[0]:.{digits}f}{note}")
            else:
                text.append(spread(vals, digits))
            if beside[i]:
                ref = paper[i] if i < len(paper) else None
                text.append("-" if ref is None else f"{ref:.{digits}f}")
        out.append(text)
    return head, out


def spread(values: list[float | None], digits: int = 1) -> str:
    """'mean ± std (n=k)' over the seeds that finished (sample std; '-' when none did; one
    seed has no spread to show: 'value (n=1)')."""
    done = [v for v in values if v is not None]
    if not done:
        return "-"
    mean, std = mean_std(done)
    missing = f", {len(values) - len(done)} not done" if len(done) < len(values) else ""
    shown = f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if len(done) > 1 else "")
    return f"{shown} (n={len(done)}{missing})"


def mean_std(done: list[float]) -> tuple[float, float]:
    return statistics.fmean(done), statistics.stdev(done) if len(done) > 1 else 0.0


def separation(plan) -> list[list[str]]:
    """For each report column, every pair of rows with 2+ seeds each: the gap of their means,
    2 std (the larger row's sample std) and whether the gap exceeds it."""
    rows = [r for r in rows_of(plan) if len(r.members) > 1]
    out = []
    for col in plan.header.report.columns:
        label = col.label or f"{col.stage} {col.metric}"
        stats = {}
        for row in rows:
            done = [v for v in values(plan, row, col) if v is not None]
            if len(done) > 1:
                stats[row.label] = mean_std(done)
        for (a, (ma, sa)), (b, (mb, sb)) in itertools.combinations(stats.items(), 2):
            bar = SEPARATION * max(sa, sb)
            verdict = "separated" if abs(ma - mb) >= bar else "**not separated**"
            out.append([label, a, b, f"{ma - mb:+.{col.digits}f}", f"{bar:.{col.digits}f}",
                        verdict])
    return out


def has_seeds(plan) -> bool:
    return any(seed_group(v) != v for v in plan.variants())


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))]
                     + [fmt.format(*r) for r in rows])
