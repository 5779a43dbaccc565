"""What the local launcher does around one stage, one at a time or side by side: take the
stage's lock and mark it started, record a failure, sum up the launch, and say where the
experiment is (``[5/14] pseudolabels/pretrain (caption_pretrain): elapsed ..., eta ...``)."""
from __future__ import annotations

import logging
import os
import sys
import time
from datetime import timedelta

from fcap import exit_codes
from fcap.experiment import markers
from fcap.experiment.lock import RunLock

log = logging.getLogger("fcap.launcher")

WAIT = "wait"  # _blocked_by: a dependency this launch runs has not finished yet


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, as SLURM or taskset set it)."""
    return len(os.sched_getaffinity(0))


def available_memory_gb() -> float | None:
    """Memory that new processes can take without swapping (``MemAvailable`` of
    ``/proc/meminfo``), in GB; None where there is no such file."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1e6  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


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
