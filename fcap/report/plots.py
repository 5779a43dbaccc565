"""PNG plots for report.md: loss and gate curves per variant, and the table as bars."""
from __future__ import annotations

from pathlib import Path

from fcap.experiment import markers
from fcap.report.data import cell, read_scalars


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


# plot kind -> the trainer's scalar name in metrics.jsonl (fcap/train/monitor.py)
SCALARS = {"loss": "train/loss", "lr": "train/lr", "grad_norm": "train/grad_norm"}


def _keys(row: dict, kind: str) -> list[str]:
    if kind == "gates":
        return sorted(k for k in row if k.startswith("gates/"))
    return [SCALARS[kind]] if SCALARS[kind] in row else []


def _curves(plan, out_dir: Path, kind: str) -> list[Path]:
    plt = _pyplot()
    paths = []
    stages = list(dict.fromkeys(r.stage for r in plan.own_runs()))
    for stage in stages:
        series = {}
        for run in plan.own_runs():
            if run.stage != stage or not markers.is_complete(run):
                continue
            rows = [r for r in read_scalars(run.run_dir) if "step" in r]
            for key in sorted({k for r in rows for k in _keys(r, kind)}):
                pts = [(r["step"], r[key]) for r in rows if key in r and r[key] is not None]
                if pts:
                    label = run.variant if kind != "gates" else f"{run.variant} {key}"
                    series[label] = pts
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, pts in series.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label)
        ax.set_xlabel("step")
        ax.set_ylabel(kind if kind != "gates" else "mean |tanh(gate)|")
        ax.set_title(f"{plan.name}: {stage} {kind}")
        ax.legend(fontsize=6 if len(series) > 6 else 8)
        path = out_dir / f"{stage}_{kind}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def _bars(plan, out_dir: Path) -> Path:
    plt = _pyplot()
    cfg = plan.header.report
    col = cfg.columns[0]
    variants = plan.variants()
    ours = [cell(plan, v, col) or 0.0 for v in variants]
    paper = [(cfg.paper.get(v) or (None,))[0] or 0.0 for v in variants]
    labels = [cfg.row_labels.get(v, v) for v in variants]
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(variants)), 4))
    xs = range(len(variants))
    ax.bar([x - 0.2 for x in xs], ours, width=0.4, label="fcap")
    ax.bar([x + 0.2 for x in xs], paper, width=0.4, label="paper")
    ax.set_xticks(list(xs), labels, rotation=20, fontsize=8)
    ax.set_ylabel(col.label or col.metric)
    ax.set_title(cfg.title or plan.name, fontsize=9)
    ax.legend()
    path = out_dir / "bars.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
