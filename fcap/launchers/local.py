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
(caption_pretrain): elapsed 0:03:12, experiment eta 0:05:40``. The evaluations of
one launch share one METEOR Java process (:mod:`fcap.eval.meteor_server`).
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
from typing import Literal, Union

import yaml

from fcap import exit_codes, stop_signals
from fcap.experiment import markers
from fcap.launchers.local_stage import (WAIT, Progress, available_memory_gb, begin, cpu_cores,
                                        outcome, record_failure)
from registry import LAUNCHERS

log = logging.getLogger("fcap.launcher")


AUTO_GB_PER_STAGE = 2.0  # jobs: auto leaves this much memory to each stage (a tiny one peaks at 1.3)


@dataclass(frozen=True)
class LocalLauncherConfig:
    nproc: int = 1  # processes per stage; > 1 runs each stage under torch.distributed.run
    # stages at once: 1 in this process, one after another; N > 1 side by side, each in a
    # process of its own with one torch thread; auto: one per CPU core, at most one per
    # AUTO_GB_PER_STAGE of available memory, when no GPU is visible (stages would share it),
    # else 1
    jobs: Union[int, Literal["auto"]] = 1

    def __post_init__(self) -> None:
        if self.nproc < 1:
            raise ValueError(f"nproc must be >= 1, got {self.nproc}")
        if self.jobs != "auto" and self.jobs < 1:
            raise ValueError(f"jobs must be >= 1 or auto, got {self.jobs}")


@LAUNCHERS.register("local", config=LocalLauncherConfig)
class LocalLauncher:
    """Run stages on this machine: one after another in this process (or nproc ranks via
    torchrun), or ``jobs`` at once, each in a forked child (see module docstring)."""

    def __init__(self, cfg: LocalLauncherConfig) -> None:
        self.cfg = cfg

    def jobs(self) -> int:
        """How many stages run at once (``jobs: auto`` decided for this machine)."""
        if self.cfg.jobs != "auto":
            return self.cfg.jobs
        import torch

        if torch.cuda.is_available():
            return 1
        memory = available_memory_gb()
        by_memory = cpu_cores() if memory is None else int(memory // AUTO_GB_PER_STAGE)
        return max(1, min(cpu_cores(), by_memory))

    def launch(self, plan, *, force: bool = False, dry_run: bool = False) -> int:
        if dry_run:
            return self._launch(plan, force=force, dry_run=True)
        from fcap.eval.meteor_server import shared

        with shared(plan):  # one METEOR Java process for all the evaluations of this launch
            return self._launch(plan, force=force, dry_run=False)

    def _launch(self, plan, *, force: bool, dry_run: bool) -> int:
        jobs = 1 if dry_run else self.jobs()
        if jobs > 1:
            from fcap.launchers.local_parallel import ParallelRun

            return ParallelRun(self, plan, force=force, jobs=jobs).launch()
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
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
            try:
                proc.wait()
            except KeyboardInterrupt:  # torchrun stops its ranks on SIGINT / SIGTERM: let it
                stop_signals.pass_on(proc.pid)
                stop_signals.wait_or_kill(proc, timeout=30)
                raise
        if proc.returncode != 0:
            raise RuntimeError(f"{self.cfg.nproc} ranks exited with {proc.returncode}; "
                               f"see {run.run_dir / 'launcher.txt'}")
        return json.loads((run.run_dir / runner.RANK0_SUMMARY).read_text())
