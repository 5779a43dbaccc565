"""SIGTERM / SIGHUP stop fcap-run as Ctrl-C does (fcap/stop_signals.py); the side-by-side
launcher's case is in tests/fcap/launchers/test_local_parallel.py."""
import multiprocessing
import signal
import subprocess
import sys
import time

import pytest

from fcap import stop_signals


def _child_stdout(code: str) -> str:
    """Run ``code`` in a fresh interpreter (signal handlers are per process)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _descendants(pid: int) -> list[int]:
    kids = [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                           text=True).stdout.split()]
    return kids + [d for k in kids for d in _descendants(k)]


def test_kill_stops_the_ranks_of_a_distributed_stage(tmp_path, fix):
    """``kill PID`` to fcap-run running a 2-rank stage (torchrun): the ranks stop too."""
    exp = tmp_path / "ranks.yaml"
    exp.write_text(f"""
name: ranks
plugins: [{fix}/plugins/parallel_tasks.py]
launcher: {{jobs: 1, nproc: 2}}
stages:
  a: {{task: toy_meet, me: a, other: nobody, wait_s: 120}}
""")
    proc = subprocess.Popen([sys.executable, "-m", "fcap.cli", str(exp)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    started = tmp_path / "runs/ranks/a.started"
    deadline = time.monotonic() + 120
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists()
    tree = _descendants(proc.pid)  # torchrun and its two ranks
    assert len(tree) >= 3
    proc.send_signal(signal.SIGTERM)  # to fcap-run alone, as kill PID does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip().endswith("stopped by SIGTERM"), err
    time.sleep(1)
    alive = [pid for pid in tree if subprocess.run(["kill", "-0", str(pid)],
                                                   capture_output=True).returncode == 0]
    assert alive == []


@pytest.mark.parametrize("ignored", [False, True])
def test_a_signal_ignored_at_start_stays_ignored(ignored):
    """``nohup fcap-run ...`` ignores SIGHUP: the run must go on when the terminal closes."""
    code = ("import signal, sys\n"
            + ("signal.signal(signal.SIGHUP, signal.SIG_IGN)\n" if ignored else "")
            + "from fcap import stop_signals\n"
              "stop_signals.install()\n"
              "try:\n"
              "    signal.raise_signal(signal.SIGHUP)\n"
              "    print('went on')\n"
              "except KeyboardInterrupt as err:\n"
              "    print(err)\n")
    assert _child_stdout(code) == ("went on" if ignored else "stopped by SIGHUP")


def test_a_process_stops_once_and_ignores_the_next_stop_signals():
    """SIGHUP to the whole group, then the launcher's SIGTERM: the stage's stopping (its
    finally blocks, its markers) is not cut short by the second signal."""
    code = ("import signal\n"
            "from fcap import stop_signals\n"
            "stop_signals.install()\n"
            "try:\n"
            "    signal.raise_signal(signal.SIGHUP)\n"
            "except KeyboardInterrupt as err:\n"
            "    signal.raise_signal(signal.SIGTERM)\n"
            "    print(err, 'and went on')\n")
    assert _child_stdout(code) == "stopped by SIGHUP and went on"


@pytest.mark.parametrize("kind", ["popen", "process"])
@pytest.mark.parametrize("stops", [True, False])
def test_wait_or_kill_waits_for_a_child_that_stops_and_kills_one_that_does_not(kind, stops):
    """The launchers' last step after a stop: a stage that ends by itself is waited for, one
    still running after the timeout is killed (and reaped)."""
    seconds = 0.2 if stops else 60
    if kind == "popen":
        child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    else:
        child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(seconds,))
        child.start()
    began = time.monotonic()
    assert stop_signals.wait_or_kill(child, timeout=10 if stops else 0.5) is stops
    assert time.monotonic() - began < 10
    code = child.returncode if kind == "popen" else child.exitcode
    assert code == (0 if stops else -signal.SIGKILL)
