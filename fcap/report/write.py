"""report.md: the experiment's table in the paper's layout, with plots and run metadata
(and report.html beside it: the same page, self-contained, :mod:`fcap.report.html`)."""
from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from fcap.experiment import markers
from fcap.experiment.variants import seed_group
from fcap.io import claim_dir, write_text_atomic
from fcap.report import skips


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


def cell(plan, variant: str, column) -> float | None:
    """One number of the table: ``column.metric`` of ``column.stage`` in ``variant``."""
    try:
        run = plan.get(variant, column.stage)
    except KeyError:
        return None
    if not markers.is_complete(run):
        return None
    if column.source == "summary":
        data = (markers.read_done(run) or {}).get("summary") or {}
    else:
        data = _read_json(run.run_dir / "metrics.json") or {}
    value = data.get(column.metric)
    return None if value is None else float(value) * column.scale


def table_rows(plan, *, per_seed: bool = False) -> tuple[list[str], list[list[str]]]:
    """The table: one row per variant; repeated seeds of a variant (``seeds: N``) as one row
    of mean ± std (n), or one row per seed with ``per_seed``."""
    cfg = plan.header.report
    head = ["variant"]
    for col in cfg.columns:
        label = col.label or f"{col.stage} {col.metric}"
        head += [f"{label} (ours)", f"{label} (paper)"]
    groups: dict[str, list[str]] = {}
    for variant in plan.variants():
        groups.setdefault(variant if per_seed else seed_group(variant), []).append(variant)
    rows = []
    for name, members in groups.items():
        label = cfg.row_labels.get(name)
        if label is None:  # one seed of a labelled variant: "Alpha (a,seed=1)"
            group = cfg.row_labels.get(seed_group(name))
            label = name if group is None else f"{group} ({name})"
        row = [label]
        paper = cfg.paper.get(seed_group(name), (None,) * len(cfg.columns))
        for col, ref in zip(cfg.columns, paper):
            if len(members) == 1:
                ours = cell(plan, members[0], col)
                note = skips.cell_note(plan, members[0], col.stage)  # items the score is missing
                text = "-" if ours is None else f"{ours:.1f}{note}"
            else:
                text = spread([cell(plan, v, col) for v in members])
            row += [text, "-" if ref is None else f"{ref:.1f}"]
        rows.append(row)
    return head, rows


def spread(values: list[float | None]) -> str:
    """'mean ± std (n=k)' over the seeds that finished (sample std; '-' when none did)."""
    done = [v for v in values if v is not None]
    if not done:
        return "-"
    mean = sum(done) / len(done)
    std = (sum((v - mean) ** 2 for v in done) / (len(done) - 1)) ** 0.5 if len(done) > 1 else 0.0
    missing = f", {len(values) - len(done)} not done" if len(done) < len(values) else ""
    return f"{mean:.1f} ± {std:.1f} (n={len(done)}{missing})"


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


def metadata(plan) -> list[str]:
    import torch

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    lines = [
        f"- fcap commit: `{commit}`",
        f"- experiment file: `{plan.source}`" + (f", profile `{plan.profile}`" if plan.profile else ""),
        f"- hardware: {platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs, {device}; "
        f"torch {torch.__version__}",
        "",
        "| run | task | config hash | state | wall time (s) |",
        "|---|---|---|---|---|",
    ]
    total = 0.0
    for run in plan.own_runs():
        done = markers.read_done(run) if markers.is_complete(run) else None
        wall = (done or {}).get("wall_s")
        total += wall or 0.0
        lines.append(f"| {run.key} | {run.task} | `{run.config_hash}` | "
                     f"{'done' if done else 'not done'} | {'-' if wall is None else wall} |")
    lines.append(f"\nTotal wall time of completed stages: {total:.1f} s.")
    return lines


def write_report(plan) -> Path:
    """Write ``<output_root>/<name>/report.md`` (+ ``plots/``, ``report.html``); return its path."""
    from fcap.report.html import write_html
    from fcap.report.plots import draw_all

    cfg = plan.header.report
    out_dir = claim_dir(plan.out_dir, kind="experiment", key="output_root")
    head, rows = table_rows(plan)
    plots = draw_all(plan, out_dir / "plots")  # inside the claimed experiment folder
    parts = [f"# {cfg.title or plan.name}", ""]
    if cfg.columns:
        parts += [markdown_table(head, rows), ""]
        if has_seeds(plan):  # every per-seed number stays available
            parts += ["### Per seed", "", markdown_table(*table_rows(plan, per_seed=True)), ""]
    if cfg.notes:
        parts += [cfg.notes.strip(), ""]
    parts += skips.section(plan)
    if plots:
        parts += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    parts += ["## Runs", ""] + metadata(plan)
    path = write_text_atomic(out_dir / "report.md", "\n".join(parts) + "\n")
    write_html(path)
    return path
