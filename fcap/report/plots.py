"""PNG plots for report.md: loss and gate curves per variant, and the table as bars."""
from __future__ import annotations

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


def _bars(plan, out_dir: Path) -> Path:
    """The first report column as bars, one per row of the table (seeds: their mean, with
    the sample std as the error bar), the paper's number beside it where it has one."""
    plt = _pyplot()
    cfg = plan.header.report
    col = cfg.columns[0]
    rows = rows_of(plan)
    ours, spread, paper = [], [], []
    for row in rows:
        done = [v for v in values(plan, row, col) if v is not None]
        mean, std = mean_std(done) if done else (0.0, 0.0)
        ours.append(mean)
        spread.append(std)
        ref = (cfg.paper.get(seed_group(row.members[0])) or (None,))[0] if (
            row.members and not row.swap) else None
        paper.append(ref or 0.0)
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(rows)), 4))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], ours, width=0.4, label="fcap", yerr=spread if any(spread)
           else None, capsize=3)
    ax.bar([x + 0.2 for x in xs], paper, width=0.4, label="paper")
    ax.set_xticks(list(xs), [row.label for row in rows], rotation=20, fontsize=8, ha="right")
    ax.set_ylabel(col.label or col.metric)
    ax.set_title(cfg.title or plan.name, fontsize=9)
    ax.legend()
    path = out_dir / "bars.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
