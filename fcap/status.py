"""``fcap-run status EXPERIMENT.yaml``: each variant/stage as pending, running, done or failed.

A stage is *running* while a process holds its run directory's lock (the
detail names it: pid, host, start time); SLURM-submitted stages show their
job's state instead.
"""
from __future__ import annotations

import json
import sys

from fcap.experiment import markers, plan_from_argv
from fcap.experiment.lock import describe, holder


def stage_state(run) -> tuple[str, str]:
    """(state, detail) of one run from its lock and markers."""
    who = holder(run.run_dir) if run.run_dir.is_dir() else None
    if who is not None:
        return "running", f"by {describe(who)}"
    if markers.is_complete(run):  # a reference is compared by content once its stage reran
        return "done", markers.reads_incomplete(run)
    failed = run.run_dir / markers.FAILED
    if failed.exists():
        try:
            info = json.loads(failed.read_text())
        except ValueError:
            info = {}
        if info.get("config_hash") == run.config_hash:
            return "failed", info.get("error", "").splitlines()[0] if info.get("error") else ""
    if markers.read_done(run):  # done once, stale now: why (config, inputs, a dependency)
        return "pending", markers.why_fresh(run) or "config changed since it completed"
    started = markers.read_started(run)
    if started and started.get("config_hash") == run.config_hash:  # no lock: nothing runs it
        return "pending", (f"started {started.get('started_at', '?')} on "
                           f"{started.get('host', '?')} and stopped before it finished "
                           f"(interrupted or killed); the next fcap-run resumes it")
    return "pending", ""


def main(argv: list[str]) -> int:
    plan = plan_from_argv("fcap-run status", argv)
    from fcap.launchers import slurm_status

    submitted = slurm_status.rows(plan)  # runs sent to SLURM: sacct state, job ids, logs
    shown = {run.key for run in plan.selected}  # every run unless --only / --stages
    runs = [run for run in plan.runs if run.key in shown]
    width = max([40, *(len(run.key) + 1 for run in runs)])
    print(f"{'variant/stage':<{width}} {'state':<8} detail")
    for run in runs:
        if run.key in submitted:
            state, extra = submitted[run.key]
        else:
            state, detail = stage_state(run)
            log = run.run_dir / markers.LOG
            extra = f"{detail}  log: {log}" if state == "failed" else detail
        print(f"{run.key:<{width}} {state:<8} {extra}".rstrip())
    missing = plan.not_found()
    if missing:
        print(f"fcap: {missing}", file=sys.stderr)
    return 0
