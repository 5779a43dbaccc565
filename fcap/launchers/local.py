"""The ``local`` launcher: every stage on this machine, in dependency order.

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

import yaml

from fcap import exit_codes
from fcap.experiment import markers
from fcap.experiment.lock import RunLock
from registry import LAUNCHERS

log = logging.getLogger("fcap.launcher")


@dataclass(frozen=True)
class LocalLauncherConfig:
    nproc: int = 1  # processes per stage; > 1 runs each stage under torch.distributed.run

    def __post_init__(self) -> None:
        if self.nproc < 1:
            raise ValueError(f"nproc must be >= 1, got {self.nproc}")


@LAUNCHERS.register("local", config=LocalLauncherConfig)
class LocalLauncher:
    """Run stages sequentially on this machine (in-process, or nproc ranks via torchrun)."""

    def __init__(self, cfg: LocalLauncherConfig) -> None:
        self.cfg = cfg

    def launch(self, plan, *, force: bool = False, dry_run: bool = False) -> int:
        status: dict[str, str] = {}
        failed, codes = [], []
        progress = _Progress(len(plan.selected))
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
        if failed:
            for run in failed:
                if status[run.key] == "failed":
                    print(f"fcap: stage {run.key} failed; log: {run.run_dir / markers.LOG}",
                          file=sys.stderr)
            return codes[0] if codes else exit_codes.STAGE_FAILED
        return 0

    def _blocked_by(self, plan, run, status) -> str:
        for _name, dep_run in plan.dependencies(run):
            st = status.get(dep_run.key)
            if st in ("failed", "blocked"):
                return f"dependency {dep_run.key} {st}"
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

    def _run(self, plan, run, *, force: bool) -> int | None:
        """Run one stage: 0 when done, None when another process finished it meanwhile,
        else the exit code of its failure. Raises when the run directory is not fcap's
        (OwnershipError) or another process is running the stage (RunBusyError)."""
        from fcap import runner

        markers.claim(run)
        with RunLock(run.run_dir, what=f"stage {run.key}"):
            if not force and markers.is_complete(run):  # finished while we were looking
                log.info("skip %s: completed by another process", run.key)
                return None
            markers.mark_started(run, force=force)
            log.info("run %s (task %s) -> %s", run.key, run.task, run.run_dir)
            start = time.time()
            try:
                if self.cfg.nproc > 1:
                    summary = self._run_distributed(run)
                else:
                    summary = runner.execute(plan, run)
            except Exception as err:
                msg = f"{type(err).__name__}: {err}"
                trace = traceback.format_exc()
                markers.mark_failed(run, msg + "\n" + trace)
                code = exit_codes.code_for(err)
                kind = f" ({exit_codes.KIND[code]})" if code is not None else ""
                log.error("stage %s failed%s: %s", run.key, kind, msg)
                if exit_codes.debug_enabled():
                    print(trace, file=sys.stderr, end="")
                return exit_codes.STAGE_FAILED if code is None else code
            markers.mark_done(run, summary, time.time() - start)
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


class _Progress:
    """Experiment-level progress: which stage of how many, the time so far, and an ETA
    for the stages left. A stage left is estimated by the mean wall time of the stages of
    its task this launch has finished, else of all finished stages (none yet: no ETA)."""

    def __init__(self, total: int) -> None:
        self.total, self.start = total, time.time()
        self.walls: dict[str, list[float]] = {}  # task -> wall times of finished stages

    def started(self, index: int, run, left: list) -> None:
        """``left``: the stages still to run, this one included."""
        done = [s for walls in self.walls.values() for s in walls]
        if done:
            eta = sum(_mean(self.walls.get(r.task) or done) for r in left)
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
