"""What runs inside a SLURM job: one stage on every task (or one shard of an array).

Preemption and time limits: SLURM sends USR2 ``signal_delay_s`` before the
limit (``scancel --signal=USR2`` or a preemption does too) to every task. The
handler only sets a flag (:func:`fcap.train.preemption.request_checkpoint`):
the trainer agrees on it across ranks after the current step, every rank takes
part in saving the checkpoint, and the stage raises ``TrainingInterrupted``.
Rank 0 then requeues the job (``scontrol requeue``) and the rerun resumes from
the checkpoint. A stage that does not stop by itself within ``stop_grace_s``
(pseudolabel shards, which keep durable progress) is requeued as it is. After
``max_requeues`` requeues (``SLURM_RESTART_COUNT``) the stage fails instead.

Rank 0, which owns the markers, holds the run directory's lock
(:mod:`fcap.experiment.lock`; an array element its element's lock) while the
stage runs: a job that finds the stage being run elsewhere fails with "stage X
is being run by pid P on host H since T" and writes no marker. Only an earlier
run of the same job (a requeue that started before the old one was gone) is
waited for, up to ``REQUEUE_LOCK_WAIT_S``.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import submitit

from fcap.io import write_json_atomic
from fcap.launchers.slurm_env import export_distributed_env, restart_count
from fcap.launchers.slurm_status import ARRAY_DIR, LOG_DIR, read_elements

log = logging.getLogger("fcap.launcher.slurm")
REQUEUE_LOCK_WAIT_S = 300.0
RECHECK_WAIT_S = 600.0  # ranks > 0 wait this long for rank 0's recheck answer


class PreemptionGuard:
    """USR2 -> cooperative checkpoint request, then (rank 0) requeue or give up."""

    def __init__(self, *, job_id: str, rank: int, max_requeues: int, stop_grace_s: float) -> None:
        self.job_id, self.rank = job_id, rank
        self.max_requeues, self.stop_grace_s = max_requeues, stop_grace_s
        self.signalled_at: float | None = None
        self._requeued = False
        self._finished = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def install(self) -> None:
        from fcap.train import preemption  # imported now: never import inside a handler

        self._request = preemption.request_checkpoint
        sig = getattr(signal, "SIG" + submitit.JobEnvironment.USR_SIG)
        signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame) -> None:
        if self.signalled_at is not None:
            return
        self.signalled_at = time.time()
        self._request(then_stop=True)
        log.warning("rank %d: %s received: asking the stage to checkpoint and stop",
                    self.rank, signal.Signals(signum).name)
        if self.rank == 0:
            self._timer = threading.Timer(self.stop_grace_s, self.requeue,
                                          kwargs={"reason": "stage did not stop in time"})
            self._timer.daemon = True
            self._timer.start()

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def finish(self) -> bool:
        """The stage returned: stop the timer; True if a requeue already went out (the
        stage then finished during SLURM's kill wait and must not be marked done)."""
        self.cancel_timer()
        with self._lock:
            self._finished = True
            return self._requeued

    @property
    def can_requeue(self) -> bool:
        return restart_count() < self.max_requeues

    def requeue(self, reason: str) -> bool:
        """Rank 0: ``scontrol requeue`` this job once; False if max_requeues is spent."""
        with self._lock:
            if self.rank != 0 or self._requeued or self._finished or not self.can_requeue:
                return self._requeued
            log.warning("requeueing job %s (%s; requeue %d of %d)", self.job_id, reason,
                        restart_count() + 1, self.max_requeues)
            subprocess.run(["scontrol", "requeue", self.job_id], check=True, timeout=60)
            self._requeued = True
            return True


def _wait_for_requeue_kill(limit_s: float = 600) -> None:
    """After a requeue SLURM terminates every task; returning early would end the
    step as if the stage had finished."""
    deadline = time.time() + limit_s
    while time.time() < deadline:
        time.sleep(1)
    sys.exit(-1)


def limit_threads() -> int | None:
    """Give torch no more threads than the task's CPUs (``SLURM_CPUS_PER_TASK``, the
    stage's ``resources.cpus_per_task``); return the count set, or None when it was left
    alone. torch counts the CPUs the process may run on, which is every core of the node
    where SLURM binds no task to its CPUs (``TaskPlugin=task/none``): four one-CPU tiny
    stages on the 2-core local cluster then ran 8 threads and trained about 12x slower."""
    import torch

    given = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if not given.isdigit() or not 0 < int(given) < torch.get_num_threads():
        return None
    torch.set_num_threads(int(given))
    return int(given)


def _is_interrupt(err: BaseException) -> bool:
    from fcap.train.preemption import TrainingInterrupted

    return isinstance(err, TrainingInterrupted)


class StageJob(submitit.helpers.Checkpointable):
    """Run stage ``variant/stage`` of the resolved ``config`` on this task.

    A submitit Checkpointable: its state is the run directory, so the default
    ``checkpoint()`` (resubmit the same call) is right, and submitit uses it if
    USR2 arrives before fcap's own handler is installed.
    """

    def __init__(self, config: str, variant: str, stage: str, *, plugins: list[str],
                 max_requeues: int, stop_grace_s: float, array: int | None = None,
                 recheck: bool = False) -> None:
        self.config, self.variant, self.stage = config, variant, stage
        self.plugins, self.array = list(plugins), array
        self.max_requeues, self.stop_grace_s = max_requeues, stop_grace_s
        self.recheck = recheck  # submitted while complete: decide at start (see _recheck)

    def __call__(self):
        dist = export_distributed_env()  # first: before torch.distributed / DeepSpeed
        job_env = submitit.JobEnvironment()
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        rank = job_env.global_rank
        guard = PreemptionGuard(job_id=job_env.job_id, rank=rank, max_requeues=self.max_requeues,
                                stop_grace_s=self.stop_grace_s)
        guard.install()
        log.info("job %s rank %s/%s (node %s of %s, %s) on %s (master %s:%s, requeues %d)",
                 job_env.job_id, dist["RANK"], dist["WORLD_SIZE"], dist["NODE_RANK"],
                 job_env.num_nodes, os.environ.get("SLURMD_NODENAME", "?"), job_env.hostname,
                 dist["MASTER_ADDR"], dist["MASTER_PORT"], restart_count())
        threads = limit_threads()
        if threads is not None:
            log.info("torch threads: %d (cpus_per_task)", threads)

        from fcap import runner
        from fcap.experiment import build_plan, markers
        from fcap.plugins import load_plugins

        recheck = getattr(self, "recheck", False)  # (a job pickled by an older fcap has none)
        if recheck and rank != 0:
            # before reading config.yaml: rank 0 may be moving it aside with the old outputs
            kept = await_recheck(Path(self.config).parent, rank=rank, job_id=job_env.job_id)
        load_plugins(self.plugins)
        plan = build_plan(self.config)
        run = plan.get(self.variant, self.stage)
        index = job_env.array_task_id
        extra = {"slurm_job_id": job_env.job_id, "requeues": restart_count()}
        if index is not None:
            extra["array_index"] = int(index)
        where = f"array element {index}: " if index is not None else ""
        start = time.time()
        with stage_lock(run, rank=rank, index=index):
            if recheck and rank == 0:
                kept = _recheck(run, job_id=job_env.job_id)
            if recheck and kept:
                return markers.read_done(run)["summary"]
            try:
                summary = runner.execute(plan, run, extra=extra)
            except Exception as err:
                guard.cancel_timer()
                if guard.signalled_at is not None and _is_interrupt(err):
                    if guard.can_requeue:  # the same answer on every rank
                        if rank == 0:
                            guard.requeue("checkpoint saved")
                        _wait_for_requeue_kill()
                    err_text = (f"{where}interrupted and not requeued: {restart_count()} "
                                f"requeue(s) already, max_requeues={self.max_requeues}; {err}")
                else:
                    err_text = f"{where}{type(err).__name__}: {err}\n{traceback.format_exc()}"
                if rank == 0:
                    markers.mark_failed(run, err_text)
                raise
            if guard.finish():
                _wait_for_requeue_kill()
            if rank == 0:
                mark_done(run, summary, time.time() - start, index=index, count=self.array)
        return summary


def recheck_answer(run_dir: Path, job_id: str) -> Path:
    """Where rank 0 of a recheck job writes its decision for the other ranks."""
    return Path(run_dir) / LOG_DIR / f"recheck.{job_id}.{restart_count()}.json"


def await_recheck(run_dir: Path, *, rank: int, job_id: str) -> bool:
    """Ranks > 0 of a recheck job: wait for rank 0's decision (:func:`_recheck`); True when
    the stage was kept. Nothing in ``run_dir`` but the answer is read before it comes: a
    stage that runs again has its outputs, config.yaml included, moved aside first."""
    answer = recheck_answer(run_dir, job_id)
    deadline = time.time() + RECHECK_WAIT_S
    while not answer.exists():
        if time.time() > deadline:
            raise RuntimeError(f"rank {rank}: rank 0 did not decide within {RECHECK_WAIT_S:.0f} s "
                               f"whether the stage in {run_dir} is still complete ({answer} was "
                               "not written)")
        time.sleep(0.5)
    return bool(json.loads(answer.read_text())["kept"])


def _recheck(run, *, job_id: str) -> bool:
    """Rank 0 of a stage submitted while complete, behind jobs whose outputs it reads:
    True when it is still complete now that they have run (their outputs came out the
    same), else False once its outputs are moved aside for a fresh start (which the
    submission does for any other stage that runs again). The answer
    (``slurm/recheck.<job>.<requeue>.json``) is written last, after config.yaml is back
    in place, so the other ranks (:func:`await_recheck`) open nothing in the run directory
    before the move and find what they read after it."""
    from fcap.experiment import markers

    kept = markers.completed(run) is not None
    if kept:
        log.info("%s: still complete now that its dependencies have run: kept", run.key)
        markers.note(run, f"stage {run.key} was queued behind its dependencies and is still "
                          "complete now that they have run (what it reads came out the same): "
                          "kept, not run again")
    else:
        markers.mark_started(run)
        markers.write_config(run)  # moved aside with the old outputs; the other ranks read it
    write_json_atomic(recheck_answer(run.run_dir, job_id), {"kept": kept})
    return kept


@contextmanager
def stage_lock(run, *, rank: int, index: str | None):
    """Rank 0: hold ``run``'s lock (an array element: its element's) for the block."""
    if rank != 0:
        yield
        return
    from fcap.experiment import markers
    from fcap.experiment.lock import RunBusyError, RunLock

    element = None if index is None else int(index)
    what = f"stage {run.key}" + (f" (array element {element})" if element is not None else "")
    markers.claim(run)
    lock = RunLock(run.run_dir, what=what, element=element)
    try:
        lock.acquire()
    except RunBusyError as err:
        if not err.holder or err.holder.get("slurm_job") != os.environ.get("SLURM_JOB_ID"):
            raise
        log.warning("%s: waiting up to %.0f s for this job's previous run (%s) to end",
                    what, REQUEUE_LOCK_WAIT_S, err.holder.get("pid"))
        lock = RunLock(run.run_dir, what=what, element=element, wait_s=REQUEUE_LOCK_WAIT_S)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def mark_done(run, summary, wall_s: float, *, index: str | None, count: int | None) -> None:
    """DONE.json for a plain stage; for an array, once every element has finished."""
    from fcap.experiment import code_version, markers

    if index is None:
        markers.mark_done(run, summary, wall_s, requeues=restart_count())
        return
    folder = run.run_dir / ARRAY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / f"{int(index)}.json", {
        "config_hash": run.config_hash, "summary": summary, "wall_s": round(wall_s, 3),
        "code": code_version.current()})
    # Each element writes its own marker before looking, so the last to finish sees all.
    elements = read_elements(run.run_dir, count or 0, run.config_hash)
    if len(elements) == count:
        markers.mark_done(run, {"array": count, "elements": [e["summary"] for e in elements]},
                          sum(e["wall_s"] for e in elements))
