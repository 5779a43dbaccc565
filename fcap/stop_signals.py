"""SIGTERM and SIGHUP stop ``fcap-run`` as Ctrl-C does.

Ctrl-C reaches the whole process group: the launcher and every stage it runs stop
together, and the stages resume on the next run. ``kill PID`` (SIGTERM) reaches only the
launcher, which would die at once and leave its stages running on, unowned.
:func:`install` makes these signals raise ``KeyboardInterrupt`` instead; a launcher that
stops on one passes SIGTERM on to the stages it runs (:func:`pass_on`), which inherited
the same handler and stop as at Ctrl-C. A signal that was ignored when ``fcap-run``
started (``nohup`` ignores SIGHUP) stays ignored, and a process stops once: what comes
after the first stop signal is ignored (``kill -9`` still ends it). (A job on SLURM is
signalled by SLURM: fcap/launchers/slurm_job.py.)
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading

STOPS = (signal.SIGTERM, signal.SIGHUP)
_received: list[int] = []


def install() -> None:
    """Make SIGTERM and SIGHUP stop this process (and what it forks) as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (fcap-run called from a thread)
    for sig in STOPS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _stop)


def _stop(signum: int, _frame) -> None:
    _received.append(signum)
    for sig in STOPS:  # once: a second one (SIGHUP to the whole group, then the launcher's
        signal.signal(sig, signal.SIG_IGN)  # SIGTERM) would cut short the stopping itself
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def pass_on(pid: int) -> None:
    """Send SIGTERM to ``pid`` when this process was stopped by a signal that reached only
    it; after Ctrl-C nothing is sent (it reached ``pid`` too, and a second signal would cut
    short the stage's own stopping)."""
    if _received:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def wait_or_kill(child, timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds (None: for ever) for ``child`` (a subprocess.Popen or
    a multiprocessing.Process) to end, then kill it. True when it ended by itself."""
    popen = isinstance(child, subprocess.Popen)
    wait = child.wait if popen else child.join
    with contextlib.suppress(subprocess.TimeoutExpired):
        wait(timeout=timeout)
    ended = child.poll() is not None if popen else not child.is_alive()
    if not ended:
        child.kill()
        wait()
    return ended
