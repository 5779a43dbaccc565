"""One process per stage: a second fcap-run stops and names the first; a dead holder's
lock is taken over; array elements share their stage's lock."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fcap.cli import main

TASKS = Path(__file__).parent / "rerun_tasks.py"


def experiment(tmp_path):
    path = tmp_path / "lk.yaml"
    path.write_text(yaml.safe_dump({"name": "lk", "plugins": [str(TASKS)], "stages": {
        "hold": {"task": "rerun_wait", "timeout_s": 30}}}))
    return str(path)


def start_fcap_run(exp, cwd, started):
    proc = subprocess.Popen([sys.executable, "-m", "fcap.cli", exp, "-q"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while not started.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "the first fcap-run never started its stage"
        time.sleep(0.05)
    return proc


def test_a_second_fcap_run_of_a_running_stage_stops_and_names_the_first(tmp_path, in_tmp, capsys):
    exp = experiment(tmp_path)
    run_dir = in_tmp / "runs/lk/default/hold"
    first = start_fcap_run(exp, in_tmp, run_dir / "started.txt")
    try:
        capsys.readouterr()
        assert main([exp]) == 4
        err = capsys.readouterr().err
        assert (f"fcap-run: stage default/hold is being run by pid {first.pid} on host "
                f"{socket.gethostname()} since ") in err
        assert "Traceback" not in err
        assert main(["status", exp]) == 0
        line = [r for r in capsys.readouterr().out.splitlines() if r.startswith("default/hold")][0]
        assert line.split()[1] == "running" and f"pid {first.pid}" in line
        assert not (run_dir / "FAILED.json").exists() and not (run_dir / "DONE.json").exists()
    finally:
        (in_tmp / "release").write_text("")
        out = first.communicate(timeout=60)[0]
    assert first.returncode == 0, out
    assert json.loads((run_dir / "DONE.json").read_text())["summary"] == {"runs": 1}
    assert (run_dir / ".fcap-lock").read_text() == ""  # released cleanly


def test_the_lock_of_a_killed_fcap_run_is_taken_over(tmp_path, in_tmp, caplog):
    exp = experiment(tmp_path)
    run_dir = in_tmp / "runs/lk/default/hold"
    first = start_fcap_run(exp, in_tmp, run_dir / "started.txt")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    assert json.loads((run_dir / ".fcap-lock").read_text())["pid"] == first.pid

    (in_tmp / "release").write_text("")
    assert main([exp]) == 0
    assert (f"stage default/hold: taking over the lock left by pid {first.pid} on host "
            f"{socket.gethostname()}") in caplog.text
    assert json.loads((run_dir / "DONE.json").read_text())["summary"] == {"runs": 2}  # resumed


HOLD = """
import sys, time
from fcap.experiment.lock import RunLock
lock = RunLock(sys.argv[1], what="stage v/s (array element 0)", element=0)
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_array_elements_run_side_by_side_but_not_twice_nor_beside_the_whole_stage(tmp_path):
    from fcap.experiment.lock import RunBusyError, RunLock

    other = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with RunLock(tmp_path, what="stage v/s (array element 1)", element=1):
            pass  # another element: runs beside element 0
        with pytest.raises(RunBusyError, match=rf"^stage v/s \(array element 0\) is being run by "
                                               rf"pid {other.pid} on host "):
            RunLock(tmp_path, what="stage v/s (array element 0)", element=0, wait_s=0.2).acquire()
        with pytest.raises(RunBusyError, match=rf"^stage v/s is being run by pid {other.pid} "):
            RunLock(tmp_path, what="stage v/s", wait_s=0.2).acquire()
    finally:
        other.kill()
        other.wait()
    with RunLock(tmp_path, what="stage v/s"):
        with RunLock(tmp_path, what="stage v/s"):  # re-entrant within a process
            assert json.loads((tmp_path / ".fcap-lock").read_text())["pid"] == os.getpid()
    assert (tmp_path / ".fcap-lock").read_text() == ""
