"""User and data errors raised inside a stage: one clear message, a documented exit code,
the traceback only in the stage's log (and on the console with --debug / FCAP_DEBUG=1)."""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fcap import cli, exit_codes
from fcap.cli import main

TASKS = Path(__file__).parent / "rerun_tasks.py"


def experiment(tmp_path, kind):
    path = tmp_path / "ex.yaml"
    path.write_text(yaml.safe_dump({"name": "ex", "plugins": [str(TASKS)], "stages": {
        "x": {"task": "rerun_raise", "kind": kind}}}))
    return str(path)


@pytest.mark.parametrize("kind, code, label, message", [
    ("bug", 1, "", "RuntimeError: an unexpected failure"),
    ("config", 2, " (configuration error)", "ConfigError: invalid configuration: 1 problem"),
    ("skip_limit", 3, " (data error)", "SkipLimitError: 7 of 20 videos could not be read"),
    ("checkpoint", 3, " (data error)", "CheckpointError: checkpoint step-00000004 was written"),
    ("missing", 3, " (data error)", "FileNotFoundError: data source 'msrvtt': no folder"),
    ("data", 3, " (data error)", "DataError: annotation file train.json"),
    ("ownership", 5, " (refused)", "OwnershipError: fcap will not use /somewhere"),
])
def test_a_stage_error_gives_its_exit_code_one_line_and_the_traceback_in_the_log(
        tmp_path, in_tmp, capsys, caplog, monkeypatch, kind, code, label, message):
    monkeypatch.delenv("FCAP_DEBUG", raising=False)
    assert main([experiment(tmp_path, kind)]) == code
    console = caplog.text + capsys.readouterr().err
    assert f"stage default/x failed{label}: {message}" in console
    assert "Traceback" not in console
    run_dir = in_tmp / "runs/ex/default/x"
    assert "Traceback (most recent call last)" in (run_dir / "log.txt").read_text()
    assert "Traceback (most recent call last)" in json.loads(
        (run_dir / "FAILED.json").read_text())["error"]


def test_the_console_shows_the_traceback_only_with_debug(tmp_path):
    exp = experiment(tmp_path, "skip_limit")
    env = {k: v for k, v in os.environ.items() if k != "FCAP_DEBUG"}
    for debug in ([], ["--debug"]):
        proc = subprocess.run([sys.executable, "-m", "fcap.cli", exp, *debug], capture_output=True,
                              text=True, cwd=tmp_path, env=env, timeout=120)
        assert proc.returncode == 3, proc.stderr
        assert "stage default/x failed (data error): SkipLimitError: 7 of 20" in proc.stderr
        if debug:
            assert "Traceback (most recent call last)" in proc.stderr
            assert "raise _errors()[cfg.kind]" in proc.stderr
        else:
            assert "Traceback" not in proc.stderr + proc.stdout


def test_fcap_debug_env_shows_the_traceback_and_debug_flag_is_scoped_to_the_call(
        tmp_path, in_tmp, capsys, monkeypatch):
    exp = experiment(tmp_path, "data")
    monkeypatch.setenv("FCAP_DEBUG", "1")
    assert main([exp]) == 3
    assert "raise _errors()[cfg.kind]" in capsys.readouterr().err
    monkeypatch.delenv("FCAP_DEBUG")
    assert main([exp, "--debug"]) == 3
    assert "raise _errors()[cfg.kind]" in capsys.readouterr().err
    assert "FCAP_DEBUG" not in os.environ


def test_every_error_class_in_the_exit_code_table_exists_and_is_documented():
    for module, name, code in exit_codes.KNOWN:
        cls = getattr(importlib.import_module(module), name)
        assert isinstance(cls, type) and issubclass(cls, BaseException), (module, name)
        assert f"\n  {code}    " in cli.__doc__, code
    for code in (exit_codes.OK, exit_codes.STAGE_FAILED, exit_codes.INTERRUPTED):
        assert f"\n  {code} " in cli.__doc__
