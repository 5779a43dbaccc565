"""The main job through the real scheduler: tiny Table 1 as sbatch jobs gives the local table."""
import json
from pathlib import Path

import pytest
from slurm_testing import cluster, fcap_run  # noqa: F401

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[3]
TABLE1 = ROOT / "experiments" / "table1.yaml"
MINIMAL = ROOT / "tests" / "fixtures" / "profiles" / "minimal.yaml"  # the tiny profile, fewer steps
TITLE = "Table 1: MSR-VTT val CIDEr-D after pretraining on each dataset"


def table(out: str) -> list[str]:
    return [line for line in out.split(TITLE, 1)[1].splitlines() if line.strip()][:6]


def test_tiny_table1_through_sbatch_gives_the_local_launchers_table(tmp_path, cluster):
    common = [TABLE1, "--profile", MINIMAL]
    code, out = fcap_run(*common, f"output_root={tmp_path / 'slurm'}", "--launcher", "slurm",
                         "launcher.wait=true", "launcher.poll_s=2")
    assert code == 0, out
    assert "all_variants/merge: submitted job" in out and "after all_variants/label" in out
    code, local_out = fcap_run(*common, f"output_root={tmp_path / 'local'}")
    assert code == 0, local_out
    code, report_out = fcap_run("report", *common, f"output_root={tmp_path / 'slurm'}")
    assert code == 0, report_out
    assert table(report_out) == table(local_out)
    for variant in ("asr", "pseudolabels", "laion", "pseudolabels_laion"):
        metrics = [json.loads((tmp_path / where / "table1" / variant / "evaluate" /
                               "metrics.json").read_text()) for where in ("slurm", "local")]
        assert metrics[0] == metrics[1], variant
    labels = tmp_path / "slurm" / "table1" / "all_variants" / "merge" / "pseudolabels.jsonl"
    log = (tmp_path / "slurm" / "table1" / "pseudolabels" / "pretrain" / "log.txt").read_text()
    assert f"input data.pseudolabels = {labels}" in log
