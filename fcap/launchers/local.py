"""The ``local`` launcher: every stage on this machine, in dependency order.

``jobs`` stages at once: 1 (the default) runs them one after another in this
process; more (or ``auto``: one per CPU core on a machine without GPUs) runs
stages whose dependencies are done side by side, each in a process of its own
(:mod:`fcap.launchers.local_parallel`), as a single-node scheduler would.

Each stage runs in its claimed run directory under the directory's lock
(another ``fcap-run`` of the same stage stops with "stage X is being run by pid
P on host H since T"). A stage whose config changed since its outputs were
written, or any selected stage under ``--force``, starts from scratch; see
:mod:`fcap.experiment.rerun`. A stage that raises gets FAILED.json and the
traceback in its log.txt; the console shows one line, and the launch returns
the exit code of the first failure (:mod:`fcap.exit_codes`). Before each stage
one line says where the experiment is: ``[5/14] pseudolabels/pretrain
(caption_pretrain): elapsed 0:03:12, experiment eta 0:05:40``.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Union

import yaml

from fcap import exit_codes
from fcap.experiment import markers
from fcap.experiment.lock import RunLock
from registry import LAUNCHERS

log = logging.getLogger("fcap.launcher")


@dataclass(frozen=True)
class LocalLauncherConfig:
    nproc: int = 1  # processes per stage; > 1 runs each stage under torch.distributed.run
    # stages at once: 1 in this process, one after another; N > 1 side by side, each in a
    # process of its own with (CPU cores // N) torch threads; auto: one per CPU core when no
    # GPU is visible (stages would share it), else 1
    jobs: Union[int, Literal["auto"]] = 1

    def __post_init__(self) -> None:
        if self.nproc < 1:
            raise ValueError(f"nproc must be >= 1, got {self.nproc}")
        if self.jobs != "auto" and self.jobs < 1:
            raise ValueError(f"jobs must be >= 1 or auto, got {self.jobs}")


@LAUNCHERS.register("local", config=LocalLauncherConfig)
class LocalLauncher:
    """Run stages sequentially on this machine (in-process, or nproc ranks via torchrun)."""

    def __init__(self, cfg: LocalLauncherConfig) -> None:
        self.cfg = cfg

    def jobs(self) -> int:
        """How many stages run at once (``jobs: auto`` decided for this machine)."""
        if self.cfg.jobs != "auto":
            return self.cfg.jobs
        import torch

        return 1 if torch.cuda.is_available() else cpu_cores()

    def launch(self, plan, *, force: bool = False, dry_run: bool = False) -> int:
        if not dry_run and self.jobs() > 1:
            from fcap.launchers.local_parallel import ParallelRun

            return ParallelRun(self, plan, force=force, jobs=self.jobs()).launch()
        status: dict[str, str] = {}
        failed, codes = [], []
        progress = Progress(len(plan.selected))
        for index, run in enumerate(plan.selected, 1):
            state = self._blocked_by(plan, run, status)
            if dry_run:
                self._print_dry(run, state, plan.forces(run, force))
                status[run.key] = "planned"
                continue
            if state:
                log.error("skip %s: %s", run.key, state)
                status[run.key] = "blocked"
                failed.append(run)
                continue
            if not plan.forces(run, force) and markers.is_complete(run):
                log.info("skip %s: complete with the same config (%s)", run.key, run.config_hash)
                status[run.key] = "done"
                continue
            progress.started(index, run, [r for r in plan.selected[index - 1:]
                                          if plan.forces(r, force) or not markers.is_complete(r)])
            start = time.time()
            code = self._run(plan, run, force=plan.forces(run, force))
            if code == exit_codes.OK:  # a failure's or another process's time says little
                progress.finished(run, time.time() - start)
            status[run.key] = "failed" if code else "done"
            if code:
                failed.append(run)
                codes.append(code)
        return outcome(failed, status, codes)

    def _blocked_by(self, plan, run, status, selected: frozenset = frozenset()) -> str:
        """Why ``run`` cannot start ('' when it can); ``WAIT`` while a dependency in
        ``selected`` (the stages this launch runs side by side) has not finished."""
        for _name, dep_run in plan.dependencies(run):
            st = status.get(dep_run.key)
            if st in ("failed", "blocked", "busy", "refused"):
                return f"dependency {dep_run.key} {st}"
            if st is None and dep_run.key in selected:
                return WAIT
            if st is None and not markers.is_complete(dep_run):
                return (f"dependency {dep_run.key} is not selected and not complete "
                        f"(add it with --stages, or run it first)")
        return ""

    def _print_dry(self, run, state, force) -> None:
        if state and "not selected" in state:
            action = f"blocked: {state}"
        elif not force and markers.is_complete(run):
            action = "skip (complete, same config)"
        else:
            action = "run" + (" (after " + ", ".join(run.deps) + ")" if run.deps else "")
            fresh = markers.why_fresh(run, force=force)
            action += f" from scratch: {fresh}" if fresh else ""
        print(f"=== {run.key}  task={run.task}  hash={run.config_hash}  -> {action}")
        print(f"    dir: {run.run_dir}")
        stage = run.resolved["stages"][run.stage]
        print("    " + yaml.safe_dump({run.stage: stage}, sort_keys=False).replace("\n", "\n    "))

    def _run(self, plan, run, *, force: bool, started=None) -> int | None:
        """Run one stage: 0 when done, None when another process finished it meanwhile,
        else the exit code of its failure. Raises when the run directory is not fcap's
        (OwnershipError) or another process is running the stage (RunBusyError).
        ``started(run)``, if given, is called once the attempt is marked started."""
        from fcap import runner

        lock = begin(run, force=force)
        if lock is None:
            return None
        try:  # held since begin(): released here (a `with` would only nest in it)
            if started is not None:
                started(run)
            start = time.time()
            try:
                if self.cfg.nproc > 1:
                    summary = self._run_distributed(run)
                else:
                    summary = runner.execute(plan, run)
            except Exception as err:
                return record_failure(run, f"{type(err).__name__}: {err}",
                                      traceback.format_exc(), exit_codes.code_for(err))
            markers.mark_done(run, summary, time.time() - start)
        finally:
            lock.release()
        log.info("done %s in %.1f s", run.key, time.time() - start)
        return exit_codes.OK

    def _run_distributed(self, run):
        from fcap import runner

        config = markers.write_config(run)
        # --log-dir /dev/null: the ranks' output goes to launcher.txt; without it torchrun
        # leaves an empty /tmp/torchelastic_* folder behind for every stage it runs
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={self.cfg.nproc}", f"--log-dir={os.devnull}",
               "-m", "fcap.runner", str(config),
               "--stage", run.stage, "--variant", run.variant]
        log.info("launch: %s", " ".join(cmd))
        with open(run.run_dir / "launcher.txt", "ab") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
        if proc.returncode != 0:
            raise RuntimeError(f"{self.cfg.nproc} ranks exited with {proc.returncode}; "
                               f"see {run.run_dir / 'launcher.txt'}")
        return json.loads((run.run_dir / runner.RANK0_SUMMARY).read_text())


WAIT = "wait"  # _blocked_by: a dependency this launch runs has not finished yet


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, as SLURM or taskset set it)."""
    return len(os.sched_getaffinity(0))


def begin(run, *, force: bool) -> RunLock | None:
    """Claim ``run``'s directory, take its lock and mark the attempt started; the lock is
    returned held (release it when the stage has finished). None when another process
    completed the stage meanwhile. Raises OwnershipError (not fcap's folder) or RunBusyError."""
    markers.claim(run)
    lock = RunLock(run.run_dir, what=f"stage {run.key}")
    lock.acquire()
    try:
        if not force and markers.is_complete(run):  # finished while we were looking
            log.info("skip %s: completed by another process", run.key)
            lock.release()
            return None
        markers.mark_started(run, force=force)
    except BaseException:
        lock.release()
        raise
    log.info("run %s (task %s) -> %s", run.key, run.task, run.run_dir)
    return lock


def record_failure(run, msg: str, trace: str, code: int | None) -> int:
    """FAILED.json with the traceback, one console line; the launch's exit code for it."""
    markers.mark_failed(run, msg + "\n" + trace)
    kind = f" ({exit_codes.KIND[code]})" if code is not None else ""
    log.error("stage %s failed%s: %s", run.key, kind, msg)
    if exit_codes.debug_enabled():
        print(trace, file=sys.stderr, end="")
    return exit_codes.STAGE_FAILED if code is None else code


def outcome(failed: list, status: dict[str, str], codes: list[int]) -> int:
    """Name each failed stage's log on stderr; the exit code of the first failure (0: none)."""
    if not failed:
        return 0
    for run in failed:
        if status[run.key] == "failed":
            print(f"fcap: stage {run.key} failed; log: {run.run_dir / markers.LOG}",
                  file=sys.stderr)
    return codes[0] if codes else exit_codes.STAGE_FAILED


class Progress:
    """Experiment-level progress: which stage of how many, the time so far, and an ETA
    for the stages left. A stage left is estimated by the mean wall time of the stages of
    its task this launch has finished, else of all finished stages (none yet: no ETA);
    ``jobs`` stages at once divide the sum."""

    def __init__(self, total: int, jobs: int = 1) -> None:
        self.total, self.start, self.jobs = total, time.time(), jobs
        self.walls: dict[str, list[float]] = {}  # task -> wall times of finished stages

    def started(self, index: int, run, left: list) -> None:
        """``left``: the stages still to run, this one included."""
        done = [s for walls in self.walls.values() for s in walls]
        if done:
            eta = sum(_mean(self.walls.get(r.task) or done) for r in left) / self.jobs
            eta_text = f"experiment eta {_clock(eta)}"
        else:
            eta_text = "experiment eta after the first stage"
        log.info("[%d/%d] %s (%s): elapsed %s, %s", index, self.total, run.key, run.task,
                 _clock(time.time() - self.start), eta_text)

    def finished(self, run, seconds: float) -> None:
        self.walls.setdefault(run.task, []).append(seconds)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))
