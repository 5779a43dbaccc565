import json

import yaml

from fcap.cli import main


def calls(root):
    path = root / "runs" / "toy" / "calls.txt"
    return path.read_text().split() if path.exists() else []


def test_runs_in_order_then_skips_completed_and_invalidates_dependents(fix, in_tmp):
    exp = str(fix / "experiments" / "two_stage.yaml")
    assert main([exp]) == 0
    assert calls(in_tmp) == ["a/first", "a/second", "b/first", "b/second"]
    out = json.loads((in_tmp / "runs/toy/b/second/out.json").read_text())
    assert out["total"] == 13  # 10 from b/first + 3
    done = json.loads((in_tmp / "runs/toy/a/first/DONE.json").read_text())
    assert done["summary"] == {"total": 2} and len(done["config_hash"]) == 16
    # rerun: nothing to do
    assert main([exp]) == 0
    assert len(calls(in_tmp)) == 4
    # change an upstream value of variant a: a/first and a/second rerun, b untouched
    assert main([exp, "stages.first.scale=2.0", "--only", "a"]) == 0
    assert calls(in_tmp)[4:] == ["a/first", "a/second"]
    # --force reruns even when complete
    assert main([exp, "stages.first.scale=2.0", "--only", "a", "--stages", "second", "--force"]) == 0
    assert calls(in_tmp)[6:] == ["a/second"]


def test_resolved_config_is_rerunnable_as_is(fix, in_tmp, capsys):
    exp = str(fix / "experiments" / "two_stage.yaml")
    assert main([exp]) == 0
    resolved = in_tmp / "runs/toy/b/second/config.yaml"
    doc = yaml.safe_load(resolved.read_text())
    assert doc["variant"] == "b" and doc["stages"]["first"]["value"] == 10
    assert doc["stages"]["second"]["optimizer"] == {"name": "toy_sgd", "lr": 0.01, "momentum": 0.0}
    n = len(calls(in_tmp))
    report = (in_tmp / "runs/toy/report.md").read_text()
    assert "b/second" in report and "a/second" in report
    capsys.readouterr()
    assert main([str(resolved)]) == 0  # same dirs, same hashes: all skipped
    assert len(calls(in_tmp)) == n
    # the experiment's report (every variant) is not replaced by one of variant b alone
    assert (in_tmp / "runs/toy/report.md").read_text() == report
    why = (f"{resolved} is the resolved config of one run (b); {in_tmp / 'runs/toy/report.md'} "
           "reports every variant of toy and is written from the experiment's file (fcap-run "
           "report EXPERIMENT.yaml, with the command line it ran with)")
    assert f"fcap: report not rewritten: {why}\n" in capsys.readouterr().out
    assert main(["report", str(resolved)]) == 2
    assert f"  - command line: EXPERIMENT: {why}\n" in capsys.readouterr().err
    assert (in_tmp / "runs/toy/report.md").read_text() == report


def test_failed_stage_blocks_dependents_and_exit_code_1(tmp_path, fix, in_tmp, capsys):
    exp = tmp_path / "f.yaml"
    exp.write_text(f"""
name: toy
plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
stages:
  bad: {{task: toy_fail, message: kaput}}
  after_bad: {{task: toy_write, after: [bad]}}
""")
    assert main([str(exp)]) == 1
    err = capsys.readouterr().err
    log = in_tmp / "runs/toy/default/bad/log.txt"
    assert f"fcap: stage default/bad failed; log: {log}" in err
    assert "RuntimeError: kaput" in log.read_text()
    failed = json.loads((in_tmp / "runs/toy/default/bad/FAILED.json").read_text())
    assert failed["error"].startswith("RuntimeError: kaput")
    assert not (in_tmp / "runs/toy/default/after_bad").exists()
    assert main(["status", str(exp)]) == 0
    out = capsys.readouterr().out
    assert "default/bad" in out and "failed" in out and "RuntimeError: kaput" in out
    # the run's own command line works for status: its selection picks the rows
    assert main(["status", str(exp), "--launcher", "local", "--stages", "after_bad"]) == 0
    out = capsys.readouterr().out
    assert "default/after_bad" in out and "default/bad " not in out


def test_dry_run_runs_nothing(fix, in_tmp, capsys):
    assert main([str(fix / "experiments" / "two_stage.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "=== a/second  task=toy_write" in out and "run (after first)" in out
    assert not (in_tmp / "runs").exists()


def test_config_error_exit_2_without_traceback(fix, capsys):
    assert main([str(fix / "configs" / "three_mistakes.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fcap-run: invalid experiment") and "Traceback" not in err


def test_once_stage_runs_once_for_all_variants(tmp_path, fix, in_tmp, capsys):
    exp = tmp_path / "once.yaml"
    exp.write_text(f"""
name: toy
plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
stages:
  prepare: {{task: toy_write, value: 100, once: true}}
  use: {{task: toy_write, init_from: prepare, value: 1}}
variants:
  a: {{}}
  b: {{stages.use.value: 2}}
""")
    assert main([str(exp)]) == 0
    assert calls(in_tmp) == ["all_variants/prepare", "a/use", "b/use"]
    assert json.loads((in_tmp / "runs/toy/b/use/out.json").read_text())["total"] == 102
    bad = tmp_path / "bad_once.yaml"
    bad.write_text(exp.read_text().replace("b: {stages.use.value: 2}", "b: {stages.prepare.value: 3}"))
    assert main([str(bad)]) == 2
    assert ("variant b: stages.prepare.once: stage 'prepare' runs once for all variants "
            "(once: true), but variant 'b' changes its config") in capsys.readouterr().err
