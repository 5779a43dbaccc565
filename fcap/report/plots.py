"""PNG plots for report.md: loss and gate curves per variant, and the table as bars."""
from __future__ import annotations

import math
from pathlib import Path

from fcap.experiment.variants import seed_group
from fcap.report.curves import curves
from fcap.report.table import mean_std, rows_of, values


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_all(plan, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = plan.header.report
    paths = []
    for kind in cfg.plots:
        paths += _curves(plan, out_dir, kind)
    if cfg.bars and cfg.columns:
        paths.append(_bars(plan, out_dir))
    return paths


LEGEND_INSIDE = 6  # more curves than this: the legend goes beside the axes


def _curves(plan, out_dir: Path, kind: str) -> list[Path]:
    plt = _pyplot()
    paths = []
    for stage in dict.fromkeys(r.stage for r in plan.own_runs()):
        found = curves(plan, stage, kind)
        if not found:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        variants = list(dict.fromkeys(c.variant for c in found))  # a colour each
        parts = list(dict.fromkeys(c.part for c in found))  # gates: a line style per branch
        colors = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20").colors
        for curve in found:
            color = colors[variants.index(curve.variant) % len(colors)]
            style = ("-", "--", ":", "-.")[parts.index(curve.part) % 4]
            ax.plot(curve.steps, curve.mean, label=curve.label, color=color, linestyle=style,
                    linewidth=1.2)
            if curve.runs > 1:
                ax.fill_between(curve.steps, curve.low, curve.high, color=color, alpha=0.2,
                                linewidth=0)
        seeds = max(c.runs for c in found)
        ax.set_xlabel("step")
        ax.set_ylabel(kind if kind != "gates" else "mean |tanh(gate)| over layers")
        ax.set_title(f"{plan.name}: {stage} {kind}" + (
            f"\n(mean of each variant's {seeds} seeds; band: lowest to highest)"
            if seeds > 1 else ""), fontsize=10)
        if len(found) > LEGEND_INSIDE:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      ncol=1 + (len(found) - 1) // 25)
        else:
            ax.legend(fontsize=8)
        path = out_dir / f"{stage}_{kind}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def bar_values(plan) -> tuple[list[str], list[float], list[float], list[float]]:
    """The bars of the first report column, one per row of the table: (tick labels, means,
    error bars, paper numbers). NaN draws nothing: a row none of whose seeds finished has
    no bar (not a bar at 0; its tick says 'not done'), a row with fewer than 2 finished
    seeds no error bar (a std over one seed is not a spread of 0; its tick says 'n=1 of
    3'), a row without a paper number no paper bar."""
    cfg = plan.header.report
    col = cfg.columns[0]
    labels, ours, spread, paper = [], [], [], []
    for row in rows_of(plan):
        got = values(plan, row, col)
        done = [v for v in got if v is not None]
        mean, std = mean_std(done) if done else (math.nan, math.nan)
        ours.append(mean)
        spread.append(std if len(done) > 1 else math.nan)
        labels.append(row.label + ("\n(not done)" if not done else f"\n(n={len(done)} of "
                                   f"{len(got)})" if len(done) < len(got) else ""))
        ref = (cfg.paper.get(seed_group(row.members[0])) or (None,))[0] if (
            row.members and not row.swap) else None
        paper.append(math.nan if ref is None else ref)
    return labels, ours, spread, paper


def _bars(plan, out_dir: Path) -> Path:
    """:func:`bar_values` drawn: fcap's bar (with the sample std over seeds as its error
    bar) and the paper's beside it when the report gives paper numbers."""
    plt = _pyplot()
    cfg = plan.header.report
    col = cfg.columns[0]
    labels, ours, spread, paper = bar_values(plan)
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(labels)), 4))
    xs = range(len(labels))
    shift = 0.2 if cfg.paper else 0.0  # no paper numbers anywhere: one bar per row
    ax.bar([x - shift for x in xs], ours, width=0.4, label="fcap",
           yerr=spread if any(not math.isnan(s) for s in spread) else None, capsize=3)
    if cfg.paper:
        ax.bar([x + shift for x in xs], paper, width=0.4, label="paper")
        ax.legend()
    ax.set_xticks(list(xs), labels, rotation=20, fontsize=8, ha="right")
    ax.set_ylabel(col.label or col.metric)
    ax.set_title(cfg.title or plan.name, fontsize=9)
    path = out_dir / "bars.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
