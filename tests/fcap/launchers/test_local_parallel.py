"""The local launcher with jobs > 1: stages side by side, each in a child process that
writes its own markers; a failure, a killed child or a busy stage is reported as in-process."""
import json
import logging
import os
import subprocess
import sys

import pytest

from fcap.cli import main
from fcap.experiment import build_plan
from fcap.launchers.local_stage import cpu_cores

PLUGIN = "{fix}/plugins/parallel_tasks.py"


def experiment(tmp_path, fix, stages: str, *, jobs="2") -> str:
    path = tmp_path / "par.yaml"
    path.write_text(f"""
name: par
plugins: [{PLUGIN.format(fix=fix)}, {fix}/plugins/toy_tasks.py]
launcher: {{jobs: {jobs}}}
stages:
{stages}""")
    return str(path)


MEET = """  a: {task: toy_meet, me: a, other: b}
  b: {task: toy_meet, me: b, other: a}
  c: {task: toy_write, after: [a, b], value: 7}
"""


def done(tmp_path, stage):
    return json.loads((tmp_path / "runs/par/default" / stage / "DONE.json").read_text())


def summary(tmp_path, stage):
    return done(tmp_path, stage)["summary"]


def test_stages_without_a_dependency_between_them_run_at_the_same_time(tmp_path, fix, in_tmp,
                                                                        caplog):
    caplog.set_level(logging.INFO, logger="fcap")
    exp = experiment(tmp_path, fix, MEET)
    assert main([exp]) == 0
    a, b = summary(tmp_path, "a"), summary(tmp_path, "b")
    assert a["pid"] != b["pid"] and os.getpid() not in (a["pid"], b["pid"])
    assert a["threads"] == b["threads"] == 1  # a forked child never starts an OpenMP team
    assert a["omp"] == str(max(1, cpu_cores() // 2))  # what the stage's own subprocesses get
    assert done(tmp_path, "a")["env"]["torch_threads"] == 1  # report.md tells the runs apart
    assert a["cache"] == os.environ["FCAP_CACHE"] and a["cwd"] == str(in_tmp)
    assert summary(tmp_path, "c") == {"total": 7}  # after both
    assert (tmp_path / "runs/par/default/a/console.txt").read_text() == "a met b\n"
    assert "2 stages at once, " in caplog.text and "[3/3] default/c (toy_write)" in caplog.text
    caplog.clear()
    assert main([exp]) == 0  # complete: nothing runs again
    assert "skip default/a: complete with the same config" in caplog.text


def test_one_at_a_time_the_same_stages_cannot_meet(tmp_path, fix, in_tmp, capsys):
    exp = experiment(tmp_path, fix, MEET, jobs="1")
    assert main([exp, "stages.a.wait_s=1"]) == 1  # a waits for b, which has not started
    failed = json.loads((tmp_path / "runs/par/default/a/FAILED.json").read_text())
    assert failed["error"].startswith("TimeoutError: b did not start within 1.0 s of a")


def test_failures_keep_their_exit_code_and_block_only_their_dependents(tmp_path, fix):
    exp = experiment(tmp_path, fix, """  bad: {task: toy_die, how: missing}
  after_bad: {task: toy_write, after: [bad]}
  good: {task: toy_write, value: 3}
""")
    proc = subprocess.run([sys.executable, "-m", "fcap.cli", exp], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr  # a data error (FileNotFoundError), as in one process
    run = tmp_path / "runs/par/default"
    failed = json.loads((run / "bad" / "FAILED.json").read_text())
    assert failed["error"].startswith("FileNotFoundError: [Errno 2] No such file")
    assert "Traceback" in failed["error"] and "toy_die" in failed["error"]
    assert summary(tmp_path, "good") == {"total": 3}
    assert not (run / "after_bad").exists()
    # the child's error on the console, tagged with its stage; its stdout in console.txt
    assert "ERROR [default/bad] fcap.launcher: stage default/bad failed (data error): " \
           "FileNotFoundError" in proc.stderr
    assert (run / "bad" / "console.txt").read_text() == "loading the batch\n"
    assert "loading the batch" not in proc.stdout + proc.stderr
    assert "skip default/after_bad: dependency default/bad failed" in proc.stderr
    assert proc.stderr.endswith(f"fcap: stage default/bad failed; log: {run / 'bad' / 'log.txt'}\n")
    assert "Traceback" not in proc.stderr
    debug = subprocess.run([sys.executable, "-m", "fcap.cli", exp, "--debug"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert debug.returncode == 3 and "Traceback (most recent call last)" in debug.stderr
    assert "in toy_die" in debug.stderr


def test_a_killed_child_is_recorded_as_failed_with_its_last_output(tmp_path, fix, in_tmp,
                                                                   capsys):
    exp = experiment(tmp_path, fix, """  oom: {task: toy_die, how: kill}
  other: {task: toy_write, value: 1}
""")
    assert main([exp]) == 1
    run = tmp_path / "runs/par/default/oom"
    failed = json.loads((run / "FAILED.json").read_text())
    assert failed["error"].startswith("the stage's process was killed by SIGKILL")
    assert f"last lines of {run / 'console.txt'}:\nloading the batch" in failed["error"]
    assert summary(tmp_path, "other") == {"total": 1}
    assert main(["status", exp]) == 0
    assert "killed by SIGKILL" in capsys.readouterr().out


def test_a_stage_being_run_elsewhere_is_busy_not_run_twice(tmp_path, fix, in_tmp, capsys):
    from fcap.experiment import markers
    from fcap.experiment.lock import RunLock

    exp = experiment(tmp_path, fix, "  one: {task: toy_write, value: 1}\n"
                                    "  two: {task: toy_write, value: 2}\n"
                                    "  three: {task: toy_write, after: [one]}\n")
    plan = build_plan(exp)
    one = plan.get("default", "one")
    markers.claim(one)
    with RunLock(one.run_dir, what="stage default/one"):  # another fcap-run holds it
        assert main([exp]) == 4
    assert not (one.run_dir / "DONE.json").exists() and not (one.run_dir / "FAILED.json").exists()
    assert summary(tmp_path, "two") == {"total": 2}
    assert not (tmp_path / "runs/par/default/three").exists()
    assert "failed" not in capsys.readouterr().err  # busy is not a failure of the stage


@pytest.mark.parametrize("jobs", ["0", "many"])
def test_jobs_must_be_a_count_or_auto(tmp_path, fix, in_tmp, capsys, jobs):
    exp = experiment(tmp_path, fix, "  one: {task: toy_write}\n", jobs=jobs)
    assert main([exp]) == 2
    assert "launcher.jobs" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_ctrl_c_stops_every_child_and_their_stages_resume(tmp_path, fix, how):
    import signal
    import time

    exp = experiment(tmp_path, fix, """  a: {task: toy_meet, me: a, other: nobody, wait_s: 120}
  b: {task: toy_meet, me: b, other: nobody, wait_s: 120}
""")
    # SIGINT as at a terminal: a shell starts background jobs (CI) with it ignored, and a
    # Python started that way never raises KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "fcap.cli", exp], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started = [tmp_path / "runs/par" / f"{s}.started" for s in "ab"]
    deadline = time.monotonic() + 120
    while not all(p.exists() for p in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(p.exists() for p in started)
    children = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(proc.pid)],
                                                   capture_output=True, text=True).stdout.split()]
    assert len(children) == 2
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    else:
        os.kill(proc.pid, signal.SIGTERM)  # kill PID reaches the launcher alone
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().endswith("fcap-run: interrupted" if how == "ctrl-c"
                                else "fcap-run: stopped by SIGTERM"), err
    time.sleep(1)  # (an orphaned child would still be waiting for its partner)
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for stage in "ab":
        run = tmp_path / "runs/par/default" / stage
        assert not (run / "FAILED.json").exists() and not (run / "DONE.json").exists()
    status = subprocess.run([sys.executable, "-m", "fcap.cli", "status", exp], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert "running" not in status.stdout and "interrupted" in status.stdout, status.stdout


@pytest.mark.parametrize("jobs,preloaded", [("2", True), ("1", False)])
def test_side_by_side_children_find_the_heavy_libraries_imported(tmp_path, fix, jobs, preloaded):
    from fcap.launchers.local_parallel import PRELOAD

    names = json.dumps(list(PRELOAD))
    exp = experiment(tmp_path, fix, f"  a: {{task: toy_modules, names: {names}}}\n", jobs=jobs)
    # a fresh fcap-run (this test process has imported them all)
    proc = subprocess.run([sys.executable, "-m", "fcap.cli", exp], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert summary(tmp_path, "a")["loaded"] == (list(PRELOAD) if preloaded else [])


def test_one_at_a_time_a_stage_finds_the_threads_the_process_had(tmp_path, fix, in_tmp):
    import torch

    exp = experiment(tmp_path, fix, """  first: {task: toy_threads, set_to: 1}
  second: {task: toy_threads, after: [first]}
""", jobs="1")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main([exp]) == 0
        assert summary(tmp_path, "second") == {"found": 2}  # not first's 1
        assert done(tmp_path, "second")["env"]["torch_threads"] == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("cores,memory_gb,gpu,expected", [
    (8, 64.0, False, 8),   # one stage per core
    (8, 5.0, False, 2),    # but no more than memory holds (2 GB each)
    (8, 1.0, False, 1),
    (8, None, False, 8),   # no /proc/meminfo: cores only
    (8, 64.0, True, 1),    # a visible GPU: stages would share it
])
def test_auto_jobs_follow_cores_memory_and_gpus(monkeypatch, cores, memory_gb, gpu, expected):
    import torch

    from fcap.launchers import local

    monkeypatch.setattr(local, "cpu_cores", lambda: cores)
    monkeypatch.setattr(local, "available_memory_gb", lambda: memory_gb)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert local.LocalLauncher(local.LocalLauncherConfig(jobs="auto")).jobs() == expected
    assert local.LocalLauncher(local.LocalLauncherConfig(jobs=3)).jobs() == 3
