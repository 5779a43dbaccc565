"""The report's curves: one per variant with its seeds together, gates averaged over layers."""
import json
import textwrap
import warnings

import pytest

from fcap.cli import main
from fcap.experiment import build_plan
from fcap.report.curves import curves


def toy(tmp_path, fix, grid_values, seeds=2):
    exp = tmp_path / "cur.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: cur
        plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
        seeds: {seeds}
        stages:
          first: {{task: toy_write}}
        grid: {{stages.first.scale: {grid_values}}}
    """))
    assert main([str(exp)]) == 0
    return exp


def write_scalars(run_dir, rows):
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_seeds_are_one_curve_with_their_mean_and_band(tmp_path, fix, in_tmp):
    exp = toy(tmp_path, fix, [1.0, 2.0])
    found = {c.label: c for c in curves(build_plan(exp), "first", "loss")}
    assert set(found) == {"scale=1.0", "scale=2.0"}  # not one per seed
    two = found["scale=2.0"]  # toy_write logs loss = scale / step at steps 1..3
    assert (two.runs, two.steps, two.mean) == (2, [1, 2, 3], [2.0, 1.0, 2 / 3])
    # seeds that differ: the mean, the band from the lowest to the highest, and only the
    # steps every seed logged (a seed stopped early does not bend the mean's end)
    runs = in_tmp / "runs" / "cur"
    write_scalars(runs / "scale=1.0,seed=0" / "first", [
        {"step": 1, "train/loss": 3.0}, {"step": 2, "train/loss": 2.0},
        {"step": 3, "train/loss": float("nan")}])
    write_scalars(runs / "scale=1.0,seed=1" / "first", [
        {"step": 1, "train/loss": 1.0}, {"step": 2, "train/loss": 4.0},
        {"step": 3, "train/loss": 1.0}])
    one = {c.label: c for c in curves(build_plan(exp), "first", "loss")}["scale=1.0"]
    assert (one.steps, one.mean, one.low, one.high) == ([1, 2], [2.0, 3.0], [1.0, 2.0], [3.0, 4.0])


def test_gates_are_averaged_over_layers_per_branch(tmp_path, fix, in_tmp):
    exp = toy(tmp_path, fix, [1.0], seeds=1)
    run_dir = in_tmp / "runs" / "cur" / "scale=1.0,seed=0" / "first"
    write_scalars(run_dir, [
        {"step": 5, "gates/layer12/attn": 0.2, "gates/layer13/attn": 0.4,
         "gates/layer12/ffn": 0.9, "gates/layer13/ffn": 0.7, "train/loss": 1.0},
        {"step": 10, "gates/layer12/attn": 0.3, "gates/layer13/attn": 0.5,
         "gates/layer12/ffn": 0.8, "gates/layer13/ffn": None}])
    found = {c.label: c for c in curves(build_plan(exp), "first", "gates")}
    assert set(found) == {"scale=1.0 attn", "scale=1.0 ffn"}
    assert found["scale=1.0 attn"].mean == pytest.approx([0.3, 0.4])
    assert found["scale=1.0 ffn"].mean == pytest.approx([0.8, 0.8])  # a missing value skipped
    assert found["scale=1.0 attn"].runs == 1


def test_many_variants_plot_without_a_layout_warning(tmp_path, fix, in_tmp):
    """Twenty-five variants x two seeds: the legend, one entry per seed (and per layer for
    gates), went over the axes; tight_layout warned and the gate plot of the tiny Table 1
    was a sliver under it."""
    exp = toy(tmp_path, fix, [float(i) for i in range(1, 26)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["report", str(exp)]) == 0
    assert len(curves(build_plan(exp), "first", "gates")) == 25
    plot = in_tmp / "runs" / "cur" / "plots" / "first_loss.png"
    assert plot.stat().st_size > 1000
