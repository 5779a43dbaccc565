"""report.md says, per evaluated stage, how many items were skipped and why, beside the score."""
import textwrap
from pathlib import Path

from fcap.cli import main

PLUGIN = Path(__file__).parent / "skip_tasks.py"


def test_report_marks_scores_with_skipped_items_and_lists_why(tmp_path, in_tmp, capsys):
    exp = tmp_path / "skips.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: skips
        plugins: [{PLUGIN}]
        stages:
          evaluate: {{task: toy_skipping_eval}}
        variants:
          clean: {{}}
          broken: {{stages.evaluate.unreadable: 2, stages.evaluate.truncated: 1}}
        report:
          columns: [{{stage: evaluate, metric: CIDEr, label: CIDEr, scale: 100}}]
          paper: {{clean: [54.6], broken: [54.6]}}
    """))
    assert main([str(exp)]) == 0
    out = capsys.readouterr().out
    assert ["broken", "50.0", "(3/100", "skipped)", "54.6"] in [line.split() for line in out.splitlines()]
    report = (in_tmp / "runs/skips/report.md").read_text()
    assert "| clean | 50.0 | 54.6 |" in report  # nothing skipped: the plain number
    assert "| broken | 50.0 (3/100 skipped) | 54.6 |" in report
    assert "## Skipped items" in report
    assert "| clean/evaluate | toy_skipping_eval | 100 | 0 of 100 | - | - |" in report
    assert ("| broken/evaluate | toy_skipping_eval | 97 | 3 of 100 | unreadable 2, truncated 1 | "
            "/data/msrvtt/videos/video0.mp4: unreadable: decord cannot open it |") in report
