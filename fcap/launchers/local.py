"""The ``local`` launcher: every stage on this machine, in dependency order."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass

import yaml

from fcap.experiment import markers
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
        failed = []
        for run in plan.selected:
            state = self._blocked_by(plan, run, status)
            if dry_run:
                self._print_dry(run, state, force)
                status[run.key] = "planned"
                continue
            if state:
                log.error("skip %s: %s", run.key, state)
                status[run.key] = "blocked"
                failed.append(run)
                continue
            if not force and markers.is_complete(run):
                log.info("skip %s: complete with the same config (%s)", run.key, run.config_hash)
                status[run.key] = "done"
                continue
            ok = self._run(plan, run)
            status[run.key] = "done" if ok else "failed"
            if not ok:
                failed.append(run)
        if failed:
            for run in failed:
                if status[run.key] == "failed":
                    print(f"fcap: stage {run.key} failed; log: {run.run_dir / markers.LOG}",
                          file=sys.stderr)
            return 1
        return 0

    def _blocked_by(self, plan, run, status) -> str:
        for dep in run.deps:
            dep_run = plan.get(run.variant, dep)
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
        print(f"=== {run.key}  task={run.task}  hash={run.config_hash}  -> {action}")
        print(f"    dir: {run.run_dir}")
        stage = run.resolved["stages"][run.stage]
        print("    " + yaml.safe_dump({run.stage: stage}, sort_keys=False).replace("\n", "\n    "))

    def _run(self, plan, run) -> bool:
        from fcap import runner

        run.run_dir.mkdir(parents=True, exist_ok=True)
        markers.mark_started(run)
        log.info("run %s (task %s) -> %s", run.key, run.task, run.run_dir)
        start = time.time()
        try:
            if self.cfg.nproc > 1:
                summary = self._run_distributed(run)
            else:
                summary = runner.execute(plan, run)
        except Exception as err:
            msg = f"{type(err).__name__}: {err}"
            markers.mark_failed(run, msg + "\n" + traceback.format_exc())
            log.error("stage %s failed: %s", run.key, msg)
            return False
        markers.mark_done(run, summary, time.time() - start)
        log.info("done %s in %.1f s", run.key, time.time() - start)
        return True

    def _run_distributed(self, run):
        config = markers.write_config(run)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={self.cfg.nproc}", "-m", "fcap.runner", str(config),
               "--stage", run.stage, "--variant", run.variant]
        log.info("launch: %s", " ".join(cmd))
        with open(run.run_dir / "launcher.txt", "ab") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
        if proc.returncode != 0:
            raise RuntimeError(f"{self.cfg.nproc} ranks exited with {proc.returncode}; "
                               f"see {run.run_dir / 'launcher.txt'}")
        return {"nproc": self.cfg.nproc}
