"""From a wheel (not an editable install), an experiment kept in the user's own folder runs
with ``--profile tiny`` and ``base: fcap://...``: the built-ins ship as package data."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def sh(*cmd, **kwargs):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_install_runs_an_outside_experiment_on_builtin_profile_and_base(tmp_path):
    # build from a copy: the checkout gets no build/ or egg-info of this test's making
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("fcap", "registry"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", src,
       "-w", tmp_path / "dist", timeout=600)
    wheel, = (tmp_path / "dist").glob("fcap-*.whl")
    venv = tmp_path / "venv"  # torch, transformers, ... come from this Python's site-packages
    sh(sys.executable, "-m", "venv", "--system-site-packages", venv, timeout=300)
    sh(venv / "bin" / "pip", "install", "--no-deps", "-q", wheel, timeout=600)

    user = tmp_path / "home" / "myexp"  # the user's own repository, far from the checkout
    user.mkdir(parents=True)
    (user / "quick.yaml").write_text(textwrap.dedent("""
        name: quick
        base: fcap://base/frozen_captioner.yaml
        stages:
          pretrain:
            task: caption_pretrain
            train: {steps: 10}                    # x the tiny profile's step_scale 0.1: 1 step
            data: {name: msrvtt, root: msrvtt, split: train}
          evaluate:
            task: caption_eval
            init_from: pretrain
            data: {name: msrvtt, root: msrvtt, split: val}
            max_items: 4
            batch_size: 4
            scoring: {tokenizer: simple, metrics: [cider]}
    """))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = sh(venv / "bin" / "python", "-c", "import fcap; print(fcap.__file__)", cwd=user,
               env=env).stdout.strip()
    installed = Path(where).parent
    assert installed.is_relative_to(venv) and not installed.is_relative_to(ROOT)  # not editable
    assert (installed / "builtin" / "profiles" / "tiny.yaml").is_file()

    proc = sh(venv / "bin" / "fcap-run", "quick.yaml", "--profile", "tiny", cwd=user, env=env,
              timeout=600)
    assert "fcap: quick: 2 run(s) of 2 (1 variant(s)); launcher local; profile tiny" in proc.stdout
    runs = user / "runs" / "quick"
    assert (runs / "default" / "evaluate" / "DONE.json").is_file()
    assert (runs / "report.md").is_file() and (runs / "report.html").is_file()
    assert "source: tiny" in (runs / "default" / "pretrain" / "config.yaml").read_text()
    # the base's own values (the tiny profile overrides them, the paper profile does not)
    plan = ("from fcap.experiment import build_plan; "
            "cfg = build_plan('quick.yaml', profile='paper', overrides=['datasets.root=.', "
            "'scheduler.warmup_steps=10'])"
            ".get('default', 'pretrain').cfg; "
            "print(cfg.model.visual.cfg.source, cfg.train.log_every)")
    assert sh(venv / "bin" / "python", "-c", plan, cwd=user, env=env).stdout.split() == [
        str(user / "checkpoints" / "timesformer_divST_96x32_224_howto100m"), "20"]
