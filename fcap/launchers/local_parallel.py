"""The local launcher with ``jobs`` > 1: stages side by side on this machine.

A stage starts once every stage it depends on has finished, in the plan's
order, while fewer than ``jobs`` run. Each runs in a child process forked from
this one, holding its run directory's lock and writing its own markers exactly
as the in-process launcher does (:meth:`LocalLauncher._run`); a child that
outlives this process (killed launcher) still finishes its stage and records it.
A child computes with one torch thread: a child forked after its parent used
OpenMP hangs in its first multi-threaded region (GNU libgomp is not fork-safe),
and ``auto`` gives each core a stage anyway; subprocesses a stage starts itself
(``nproc`` ranks) get ``OMP_NUM_THREADS`` = cores // (jobs x nproc). The libraries
nearly every stage imports (:data:`PRELOAD`, about 6 s of one core) are imported
once, before the first fork, so no child imports them again (importing them runs
no OpenMP region and starts no thread). A child's log lines go to the console
tagged with the stage's name, and its stdout and stderr (progress bars, library
noise) to the stage's ``console.txt``. A child killed by a signal (out of memory)
gets FAILED.json from here. Ctrl-C stops every child, and so does SIGTERM or SIGHUP
to this process alone (fcap/stop_signals.py); their stages resume on the
next run.
"""
from __future__ import annotations

import importlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time

from fcap import exit_codes, stop_signals
from fcap.experiment import markers
from fcap.launchers.local_stage import WAIT, Progress, cpu_cores, outcome, record_failure

log = logging.getLogger("fcap.launcher")

CONSOLE = "console.txt"  # a child's stdout and stderr, in its run directory
# imported before the first fork (module docstring); a plugin's own stages import the rest
PRELOAD = ("deepspeed", "transformers", "torch.utils.tensorboard", "decord",
           "transformers.models.opt.modeling_opt",
           "transformers.models.timesformer.modeling_timesformer",
           "transformers.models.blip.modeling_blip")
_TAIL_LINES = 20  # of console.txt, in FAILED.json of a child killed by a signal


class ParallelRun:
    """One launch of ``plan``'s selected stages, ``jobs`` at a time."""

    def __init__(self, launcher, plan, *, force: bool, jobs: int) -> None:
        self.launcher, self.plan, self.force, self.jobs = launcher, plan, force, jobs
        self.threads = max(1, cpu_cores() // (jobs * launcher.cfg.nproc))  # for its subprocesses
        self.status: dict[str, str] = {}
        self.failed: list = []
        self.codes: list[int] = []
        self.running: dict = {}  # sentinel -> (run, process, start time)
        self.progress = Progress(len(plan.selected), jobs)

    def launch(self) -> int:
        log.info("%d stages at once, one torch thread each; a stage's log lines come tagged "
                 "with its name, its stdout and stderr go to %s in its run directory",
                 self.jobs, CONSOLE)
        waiting = list(self.plan.selected)
        selected = frozenset(run.key for run in waiting)
        preload()
        try:
            while waiting or self.running:
                for run in list(waiting):
                    if len(self.running) >= self.jobs:
                        break
                    state = self.launcher._blocked_by(self.plan, run, self.status, selected)
                    if state == WAIT:
                        continue
                    waiting.remove(run)
                    self._start(run, state)
                if self.running:
                    ready = multiprocessing.connection.wait(list(self.running))
                    for sentinel in ready:
                        self._finished(*self.running.pop(sentinel))
                elif waiting:  # the plan lists a stage before one it depends on
                    raise RuntimeError("no stage can start: waiting for "
                                       + ", ".join(run.key for run in waiting))
        except KeyboardInterrupt:
            for _, process, _ in self.running.values():
                stop_signals.pass_on(process.pid)  # kill PID reached only this process
            self._stop_all(timeout=30)
            raise
        except BaseException:  # this launch cannot go on: let the running stages finish
            self._stop_all(timeout=None)
            raise
        return outcome(self.failed, self.status, self.codes)

    def _start(self, run, state: str) -> None:
        if state:
            log.error("skip %s: %s", run.key, state)
            self.status[run.key] = "blocked"
            self.failed.append(run)
            return
        force = self.plan.forces(run, self.force)
        if not force and markers.is_complete(run):
            log.info("skip %s: complete with the same config (%s)", run.key, run.config_hash)
            self.status[run.key] = "done"
            return
        left = [run, *(r for r in self.plan.selected if r.key not in self.status
                       and r.key != run.key and not self._is_running(r)
                       and (self.plan.forces(r, self.force) or not markers.is_complete(r)))]
        index = len(self.status) + len(self.running) + 1
        self.progress.started(index, run, left)
        markers.claim(run)  # a user's folder is refused here, before any child starts
        sys.stdout.flush()  # or the child would write this process's buffered output again
        sys.stderr.flush()
        process = multiprocessing.get_context("fork").Process(
            target=_child, args=(self.launcher, self.plan, run, force, self.threads),
            name=f"fcap {run.key}")
        process.start()
        self.running[process.sentinel] = (run, process, time.time())

    def _is_running(self, run) -> bool:
        return any(r.key == run.key for r, _, _ in self.running.values())

    def _finished(self, run, process, start: float) -> None:
        process.join()
        code = process.exitcode
        seconds = time.time() - start
        if code == exit_codes.OK:
            self.status[run.key] = "done"
            if markers.is_complete(run):  # the child said "done X in ... s"
                self.progress.finished(run, seconds)
            return
        if code == exit_codes.INTERRUPTED:  # Ctrl-C reached the child first
            raise KeyboardInterrupt
        if code is not None and code < 0:  # killed before it could write FAILED.json
            name = signal.Signals(-code).name
            code = record_failure(run, f"the stage's process was killed by {name} (out of memory, "
                                       "or killed by hand)", _tail(run.run_dir / CONSOLE), None)
        # busy (another process runs it) or refused (not fcap's folder): the child said why
        self.status[run.key] = {exit_codes.BUSY: "busy", exit_codes.REFUSED: "refused"}.get(
            code, "failed")
        self.failed.append(run)
        self.codes.append(code)

    def _stop_all(self, timeout: float | None) -> None:
        """Wait for the running children (Ctrl-C reached them too); kill those still running
        after ``timeout`` seconds (None: wait for them to finish)."""
        for run, process, _ in self.running.values():
            if not stop_signals.wait_or_kill(process, timeout):
                log.warning("killed %s: still running %s s after the stop", run.key, timeout)


def preload() -> None:
    """Import :data:`PRELOAD` in this process (one that cannot be imported is left to the
    stage that needs it, which reports it)."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 -- the stage importing it says what is wrong
            log.debug("not preloaded: %s (%s)", name, err)


def _child(launcher, plan, run, force: bool, threads: int) -> None:
    """A forked child: run one stage as the in-process launcher would; exit with its code.
    ``threads``: OMP_NUM_THREADS for the processes the stage starts (unless set)."""
    import torch

    from fcap.experiment.lock import forget_held

    forget_held()
    torch.set_num_threads(1)  # never a new OpenMP team in a forked child (module docstring)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # fresh processes the stage starts
        os.environ.setdefault(var, str(threads))
    tag = logging.Formatter(f"%(asctime)s %(levelname)s [{run.key}] %(name)s: %(message)s",
                            datefmt="%H:%M:%S")
    for handler in logging.getLogger().handlers:  # the console: every line says its stage
        handler.setFormatter(tag)

    terminal: list = []  # the console, once stdout and stderr go to console.txt

    def to_console_file(run) -> None:  # once the attempt is marked (outputs moved aside)
        out = os.open(run.run_dir / CONSOLE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        console = os.fdopen(os.dup(2), "w", buffering=1)
        terminal.append(console)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stderr,
                                                                                 sys.stdout):
                handler.setStream(console)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        # sys.stdout may be another object than fd 1 (a test's capture): print() goes there too
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)

    try:
        code = launcher._run(plan, run, force=force, started=to_console_file)
    except KeyboardInterrupt:
        code = exit_codes.INTERRUPTED
    except Exception as err:  # busy or not fcap's folder: said before the stage started
        code = exit_codes.code_for(err)
        log.error("stage %s: %s: %s", run.key, type(err).__name__, err,
                  exc_info=code is None)
        code = exit_codes.STAGE_FAILED if code is None else code
    failed = (run.run_dir / markers.FAILED)
    if code and terminal and exit_codes.debug_enabled() and failed.exists():  # --debug
        print(json.loads(failed.read_text())["error"], file=terminal[0])
    logging.shutdown()
    sys.exit(code or exit_codes.OK)


def _tail(path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no console output)"
    return "last lines of " + str(path) + ":\n" + "\n".join(lines[-_TAIL_LINES:])
