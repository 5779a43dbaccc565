"""The example plugin adds a gate without editing fcap, and an experiment uses it."""
import json
from pathlib import Path

import torch

from fcap.cli import main
from fcap.plugins import load_plugin
from registry import GATES

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "plugins" / "sigmoid_gate.py"
MINIMAL = ROOT / "tests" / "fixtures" / "profiles" / "minimal.yaml"


def test_gate_meets_the_contract():
    load_plugin(str(PLUGIN))
    entry = GATES.get("sigmoid")
    gate = entry.obj(entry.config(init=0.0), dim=6)
    x = torch.randn(2, 3, 6)
    assert torch.equal(gate(x), torch.zeros_like(x))  # sigmoid(0) - 0.5: starts as identity
    gate = entry.obj(entry.config(init=2.0, bias=0.0), dim=6)
    assert torch.allclose(gate(x), x * torch.sigmoid(torch.tensor(2.0)))
    assert gate.value().shape == (6,)


def test_example_experiment_runs_with_the_plugin_gate(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([str(ROOT / "examples" / "plugins" / "sigmoid_gate.yaml"), "--profile",
                 str(MINIMAL)]) == 0
    run = tmp_path / "runs" / "sigmoid_gate" / "default"
    config = (run / "pretrain" / "config.yaml").read_text()
    assert "name: sigmoid" in config
    summary = json.loads((run / "pretrain" / "summary.json").read_text())
    assert set(summary["gates"]) == {"layer2/attn", "layer2/ffn", "layer3/attn", "layer3/ffn"}
    assert all(abs(v) < 0.1 for v in summary["gates"].values())  # near sigmoid(0) - 0.5 = 0
    assert "CIDEr" in json.loads((run / "evaluate" / "metrics.json").read_text())
    assert main(["--list", "gate", "--plugin", str(PLUGIN)]) == 0
    out = capsys.readouterr().out
    assert "sigmoid" in out and "bias: float = 0.5" in out
