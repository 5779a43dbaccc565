"""The paper's experiments run end to end on CPU: table1 exactly as the README says,
the others under a minimal-step profile."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fcap.cli import main
from fcap.experiment import build_plan, markers

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "tests" / "fixtures" / "profiles" / "minimal.yaml"


def test_table1_readme_command_runs_tiny_profile_end_to_end(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "fcap.cli", str(ROOT / "experiments" / "table1.yaml")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("fcap: no dataset root configured") and "'tiny' profile" in lines[0]
    console = proc.stdout + proc.stderr  # experiment-level progress, then the curves hint
    # label + merge, 4 variants x 3 seeds x (pretrain, finetune, evaluate), 3 shuffled-frame controls
    assert "[1/41] all_variants/label (pseudolabel)" in console and "[41/41] " in console
    assert f"tensorboard --logdir {tmp_path / 'runs' / 'table1'}" in console
    assert "Loading weights" not in console and "requires torchvision" not in console
    table = proc.stdout.split("Table 1: MSR-VTT val CIDEr-D after pretraining on each dataset")[1]
    lines = [re.split(r"\s{2,}", line.strip()) for line in table.strip().splitlines()[:7]]
    assert lines[0] == ["variant", "MSR-VTT (ours)", "MSR-VTT (paper)", "colour", "shape",
                        "direction", "background", "direction_axis"]
    rows = {line[0]: line[1:] for line in lines[2:]}
    assert list(rows) == ["ASR", "image captions (pseudolabels)", "LAION-5B",
                          "image captions + LAION-5B",
                          "image captions + LAION-5B, frames shuffled (control)"]
    assert rows["ASR"][1] == "49.0" and rows["image captions + LAION-5B"][1] == "54.0"
    for label, cells in rows.items():  # every row measured over its 3 seeds
        assert all(re.fullmatch(r"\d+\.\d+ ± \d+\.\d+ \(n=3\)", c) for c in cells[:1] + cells[2:]), cells
    out = tmp_path / "runs" / "table1"
    report = (out / "report.md").read_text()
    assert "| ASR |" in report and "| image captions + LAION-5B |" in report
    assert "### Which rows differ" in report and "### Per seed" in report
    for png in ("bars.png", "pretrain_loss.png", "finetune_loss.png", "pretrain_gates.png"):
        assert (out / "plots" / png).stat().st_size > 1000, png
    merged = (out / "all_variants" / "merge" / "pseudolabels.jsonl").read_text().splitlines()
    assert merged and all("caption" in json.loads(line) for line in merged)
    labels = out / "all_variants" / "merge" / "pseudolabels.jsonl"  # BLIP's, read by pretraining
    for variant, key in (("pseudolabels", "data.pseudolabels"),
                         ("pseudolabels_laion", "data.children[1].source.pseudolabels")):
        run = out / f"{variant},seed=0" / "pretrain"
        assert f"input {key} = {labels}" in (run / "log.txt").read_text()
        assert f"path: {labels}" in (run / "config.yaml").read_text()
    metrics = json.loads((out / "asr,seed=0" / "evaluate" / "metrics.json").read_text())
    assert {"CIDEr", "BLEU-4", "METEOR", "ROUGE-L", "colour", "shape", "direction",
            "background", "direction_axis"} <= set(metrics)
    index = json.loads((out / "all_variants" / "merge" / "index.json").read_text())
    assert index["truth"]["accuracy"]["colour"] > 0.5  # the pretrained tiny BLIP sees colour
    assert index["truth"]["named"]["direction"] < 0.1  # and, from one frame, never motion


@pytest.mark.parametrize("name", ["table2", "gates", "gate_init", "beta2", "crop", "attention",
                                  "pseudolabel_howto100m"])
def test_experiment_runs_with_minimal_steps(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = ROOT / "experiments" / f"{name}.yaml"
    assert main([str(path), "--profile", str(MINIMAL)]) == 0
    plan = build_plan(path, profile=str(MINIMAL))
    assert all(markers.is_complete(run) for run in plan.runs)
    assert (tmp_path / "runs" / name / "report.md").exists()
    out = capsys.readouterr().out
    if plan.header.report.columns:
        assert plan.header.report.title in out


def test_gate_init_reports_gate_shift_and_bars(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([str(ROOT / "experiments" / "gate_init.yaml"), "--profile", str(MINIMAL)]) == 0
    runs = tmp_path / "runs" / "gate_init"
    for variant, init in (("tanh0", 0.0), ("tanh1", 1.0)):
        summary = json.loads((runs / variant / "finetune" / "summary.json").read_text())
        assert 0.0 <= summary["gate_shift_max"] < 0.5
        cfg = build_plan(ROOT / "experiments" / "gate_init.yaml", profile=str(MINIMAL)).get(
            variant, "finetune").cfg
        assert cfg.model.adapters.gate.cfg.init == init
    assert (runs / "plots" / "bars.png").exists()


def test_table2_reuses_table1s_pseudolabels_without_labelling_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table1, table2 = ROOT / "experiments" / "table1.yaml", ROOT / "experiments" / "table2.yaml"
    assert main([str(table1), "--profile", str(MINIMAL), "--stages", "label,merge"]) == 0
    label = tmp_path / "runs" / "table1" / "all_variants" / "label"
    labelled = (label / "DONE.json").read_text()
    merged = tmp_path / "runs" / "table1" / "all_variants" / "merge" / "pseudolabels.jsonl"
    assert main([str(table2), "--profile", str(MINIMAL), "--stages", "pretrain"]) == 0
    assert (label / "DONE.json").read_text() == labelled  # skipped: complete, same config
    assert len((label / "log.txt").read_text().split("stage all_variants/label (task")) == 2
    log = (tmp_path / "runs" / "table2" / "default" / "pretrain" / "log.txt").read_text()
    assert f"input data.children[1].source.pseudolabels = {merged}" in log
    config = (tmp_path / "runs" / "table2" / "default" / "pretrain" / "config.yaml").read_text()
    assert f"path: {merged}" in config


def test_grid_seeds_train_two_different_runs_under_the_local_launcher(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = tmp_path / "seeds.yaml"
    exp.write_text(f"""
name: seeds
base: {ROOT / 'experiments' / 'base' / 'frozen_captioner.yaml'}
grid: {{seed: [1, 2]}}
stages:
  pretrain:
    task: caption_pretrain
    train: {{steps: 4000}}
    data: {{name: msrvtt, root: msrvtt, split: train}}
""")
    assert main([str(exp), "--profile", str(MINIMAL)]) == 0
    first = []
    for seed in (1, 2):
        rows = (tmp_path / "runs" / "seeds" / f"seed={seed}" / "pretrain" / "metrics.jsonl")
        losses = [json.loads(line) for line in rows.read_text().splitlines()]
        first.append(next(r["train/loss"] for r in losses if "train/loss" in r))
    assert first[0] != first[1]  # each run drew its own batches and initialisation
