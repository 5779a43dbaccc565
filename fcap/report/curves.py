"""The curves report.md plots, from each finished training run's ``metrics.jsonl``.

One curve per variant: the seeds of a variant (``seeds:``) are one curve, their mean at
the steps every seed logged, with the band from their lowest to their highest value. Gates
are averaged over the adapter layers, one curve per branch (``attn``, ``ffn``): the paper's
eleven layers times two branches times every seed made a legend taller than the plot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from fcap.experiment import markers
from fcap.experiment.variants import seed_group
from fcap.report.data import read_scalars

# plot kind -> the trainer's scalar name in metrics.jsonl (fcap/train/monitor.py)
SCALARS = {"loss": "train/loss", "lr": "train/lr", "grad_norm": "train/grad_norm"}
GATE_PREFIX = "gates/"  # gates/layer<i>/<branch>: mean |tanh(gate)| of one gate


@dataclass(frozen=True)
class Curve:
    variant: str  # the variant, its seeds together (``seed_group``)
    part: str  # '' for a scalar; the gate branch ('attn', 'ffn') for gates
    steps: list[int]
    mean: list[float]
    low: list[float]  # lowest seed at each step (= mean with one run)
    high: list[float]
    runs: int  # the runs (seeds) it averages

    @property
    def label(self) -> str:
        return f"{self.variant} {self.part}".strip()


def curves(plan, stage: str, kind: str) -> list[Curve]:
    """The curves of ``kind`` (loss, lr, grad_norm, gates) for ``stage``'s finished runs."""
    per_curve: dict[tuple[str, str], list[dict[int, float]]] = {}
    for run in plan.own_runs():
        if run.stage != stage or not markers.is_complete(run):
            continue
        rows = [r for r in read_scalars(run.run_dir) if isinstance(r.get("step"), int)]
        for part, points in _points(rows, kind).items():
            per_curve.setdefault((seed_group(run.variant), part), []).append(points)
    out = []
    for (variant, part), runs in per_curve.items():
        steps = sorted(set.intersection(*(set(points) for points in runs)))
        if not steps:
            continue
        at = [[points[s] for points in runs] for s in steps]
        out.append(Curve(variant, part, steps, [sum(v) / len(v) for v in at],
                         [min(v) for v in at], [max(v) for v in at], len(runs)))
    return out


def _points(rows: list[dict], kind: str) -> dict[str, dict[int, float]]:
    """{part: {step: value}} of one run: the scalar (part ''), or each gate branch's mean
    over layers (part 'attn', 'ffn')."""
    if kind != "gates":
        key = SCALARS[kind]
        points = {r["step"]: float(r[key]) for r in rows if _finite(r.get(key))}
        return {"": points} if points else {}
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        branches: dict[str, list[float]] = {}
        for key, value in r.items():
            if key.startswith(GATE_PREFIX) and _finite(value):
                branches.setdefault(key.rsplit("/", 1)[-1], []).append(float(value))
        for branch, values in branches.items():
            out.setdefault(branch, {})[r["step"]] = sum(values) / len(values)
    return out


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
