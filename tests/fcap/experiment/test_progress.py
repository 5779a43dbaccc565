"""The main job says where the experiment is (``[5/14] variant/stage``, elapsed, ETA) and,
at the end, how to look at the training curves."""
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

from fcap.launchers.local_stage import Progress

HERE = Path(__file__).parent
PROGRESS = re.compile(r"\[(\d+)/(\d+)\] (\S+) \((\w+)\): elapsed \d+:\d\d:\d\d, "
                      r"experiment eta (\d+:\d\d:\d\d|after the first stage)$")


def fcap_run(args, cwd):
    """``python -m fcap.cli ARGS`` as a user runs it: (stdout, stderr) of the process."""
    proc = subprocess.run([sys.executable, "-m", "fcap.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, proc.stderr


def progress_lines(stderr):
    return [m.groups() for line in stderr.splitlines() if (m := PROGRESS.search(line))]


def test_main_job_prints_stage_progress_and_the_tensorboard_hint(tmp_path, fix):
    exp = tmp_path / "toy.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: toy
        plugins: [{fix / 'plugins' / 'toy_tasks.py'}, {HERE / 'progress_tasks.py'}]
        stages:
          first: {{task: toy_write, value: 2}}
          curves: {{task: toy_curves, after: [first]}}
        variants: {{a: {{}}, b: {{stages.first.value: 10}}}}
    """))
    hint = f"fcap: training curves: tensorboard --logdir {tmp_path / 'runs' / 'toy'}"
    out, err = fcap_run([str(exp), "--stages", "first"], tmp_path)
    assert progress_lines(err) == [("1", "2", "a/first", "toy_write", "after the first stage"),
                                   ("2", "2", "b/first", "toy_write", progress_lines(err)[1][4])]
    assert re.fullmatch(r"\d+:\d\d:\d\d", progress_lines(err)[1][4])
    assert hint not in out  # no stage wrote TensorBoard logs yet
    # the rest: complete stages are skipped but keep their place in the count
    out, err = fcap_run([str(exp)], tmp_path)
    lines = progress_lines(err)
    assert [line[:4] for line in lines] == [("2", "4", "a/curves", "toy_curves"),
                                            ("4", "4", "b/curves", "toy_curves")]
    assert lines[0][4] == "after the first stage" and re.fullmatch(r"\d+:\d\d:\d\d", lines[1][4])
    assert hint in out.splitlines()
    assert list((tmp_path / "runs" / "toy" / "b" / "curves" / "tensorboard").glob("events.*"))


def test_eta_adds_the_mean_time_of_each_left_stages_task(caplog):
    def run(key, task):
        return SimpleNamespace(key=key, task=task)

    progress = Progress(5)
    progress.finished(run("a/pretrain", "train"), 10.0)
    progress.finished(run("b/pretrain", "train"), 20.0)
    progress.finished(run("a/eval", "eval"), 3.0)
    with caplog.at_level(logging.INFO, logger="fcap.launcher"):
        progress.started(4, run("c/pretrain", "train"),
                         [run("c/pretrain", "train"), run("c/eval", "eval"), run("c/x", "new")])
    # train 15 + eval 3 + a task not seen yet: the mean of all finished stages, 11
    assert "[4/5] c/pretrain (train): elapsed 0:00:00, experiment eta 0:00:29" in caplog.text
