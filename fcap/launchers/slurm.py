"""The ``slurm`` launcher: submit every stage of an experiment through submitit, and return.

Each run becomes one SLURM job (a job array when ``resources.array`` is set:
one element per shard) chained to the jobs of its dependencies with
``afterok``; a failed job cancels its dependents (``--kill-on-invalid-dep``).
Jobs run :class:`fcap.launchers.slurm_job.StageJob` with this interpreter and
this fcap on PYTHONPATH. The job id goes to ``<run_dir>/slurm.json``;
``fcap-run status`` reads it back. ``--dry-run`` prints the sbatch scripts.

    fcap-run EXP.yaml --launcher slurm [launcher.profile=NAME] [launcher.wait=true]
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fcap.config.errors import ConfigError, Problem
from fcap.experiment import markers
from fcap.experiment.rerun import unhashed_changes
from fcap.experiment.spec import control_char
from fcap.launchers import slurm_status as st
from fcap.launchers.slurm_env import describe as describe_env
from fcap.launchers.slurm_profile import (REPO_ROOT, ClusterProfile, load_profile,
                                          make_executor, python_of, render_sbatch,
                                          sbatch_parameters)
from registry import LAUNCHERS

log = logging.getLogger("fcap.launcher")


def _kept_options(run, job_id: str) -> str:
    """What a queued job keeps of the options it was submitted with, when they differ now
    (the same config hash: ``resources:`` and run options; sbatch fixed the first, the job's
    config.yaml the second)."""
    changes = unhashed_changes(markers.read_config(run), run)
    if not changes:
        return ""
    shown = ", ".join(changes[:4]) + (f" and {len(changes) - 4} more" if len(changes) > 4 else "")
    return (f"; changed since it was submitted: {shown}; the queued job keeps what it was "
            f"submitted with: to use the new values, scancel {job_id} and run the same command "
            "(a stage resumes from its last checkpoint)")


class SubmitError(RuntimeError):
    """sbatch refused a stage's job (a partition, account or resources the cluster does not
    have): a configuration error (exit 2) naming the stage, the profile and sbatch's words."""


@dataclass(frozen=True)
class SlurmLauncherConfig:
    profile: str = "local"  # cluster profile: slurm/<profile>.yaml, or a path to one
    wait: bool = False  # block until every submitted job ends (exit 1 if one failed)
    poll_s: float = 5.0  # with wait: seconds between sacct polls

    def __post_init__(self) -> None:
        if self.poll_s <= 0:
            raise ValueError(f"poll_s must be > 0, got {self.poll_s}")


def plugin_specs() -> list[str]:
    """Plugins loaded in this process (``--plugin`` included), for the jobs to load too:
    modules, and files that still exist (entry points load themselves)."""
    from fcap import plugins

    return [key for key in plugins.loaded_plugins()
            if not os.path.isabs(key) or os.path.isfile(key)]


def _check_run_dir(run) -> None:
    """The run directory is written into ``#SBATCH --output=`` lines, where a newline cannot
    be quoted; names and output_root are checked at load, the working directory is not."""
    bad = control_char(str(run.run_dir))
    if bad:
        raise ConfigError(Problem("launcher", "output_root", (
            f"run directory {str(run.run_dir)!r} of {run.key} contains the control character "
            f"{bad}, which cannot be written into an sbatch script; use another output_root")))


@LAUNCHERS.register("slurm", config=SlurmLauncherConfig)
class SlurmLauncher:
    """Submit stages as SLURM jobs chained by afterok dependencies (see module docstring)."""

    def __init__(self, cfg: SlurmLauncherConfig) -> None:
        self.cfg = cfg

    def launch(self, plan, *, force: bool = False, dry_run: bool = False) -> int:
        profile, source = load_profile(self.cfg.profile)
        absent = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
        if absent and not dry_run:  # before any run directory is made
            raise ConfigError([Problem("command line", "launcher.name", (
                f"launcher slurm submits with sbatch and runs with srun, and {' and '.join(absent)}"
                f" {'is' if len(absent) == 1 else 'are'} not on PATH: this machine is not a "
                "SLURM submit host. Submit from the cluster's login node, or run here with "
                "--launcher local (--dry-run shows the sbatch scripts without SLURM)"))])
        if Path(source).resolve() == (REPO_ROOT / "slurm" / "example_gpu.yaml").resolve():
            print(f"fcap: warning: launcher.profile is fcap's example {source} (partition "
                  f"{profile.partition}, account {profile.account}): copy it to "
                  "slurm/<your_cluster>.yaml, edit it and pass "
                  "launcher.profile=<your_cluster>", file=sys.stderr)
        jobs: dict[str, str] = {}  # run key -> job id its dependents wait for
        submitted: list = []
        try:
            code = self._submit_runs(plan, force, dry_run, profile, source, jobs, submitted)
        except KeyboardInterrupt:  # Ctrl-C: what is queued stays queued; say so
            if submitted:
                ids = " ".join(jobs[r.key] for r in submitted)
                print(f"fcap: interrupted while submitting: the {len(submitted)} job(s) "
                      f"submitted before stay queued (job {ids}): run the same command to "
                      f"submit the rest (queued jobs are not resubmitted), or scancel {ids}",
                      file=sys.stderr, flush=True)
            raise
        if dry_run or not submitted:
            return code
        print(f"fcap: {len(submitted)} job(s) submitted; follow with: {plan.then('status')}; "
              f"when they are done: {plan.then('report')}", flush=True)
        if self.cfg.wait:
            try:
                code = max(code, self._wait(submitted))
            except KeyboardInterrupt:  # the jobs are the cluster's now
                ids = " ".join(jobs[r.key] for r in submitted)
                print(f"fcap: stopped waiting; the {len(submitted)} job(s) keep running on the "
                      f"cluster: follow with: {plan.then('status')}; cancel with: scancel {ids}",
                      file=sys.stderr, flush=True)
                raise
        return code

    def _submit_runs(self, plan, force: bool, dry_run: bool, profile: ClusterProfile,
                     source, jobs: dict[str, str], submitted: list) -> int:
        """Submit the selected runs in order, each after its dependencies' jobs; fill
        ``jobs`` and ``submitted`` as it goes (a Ctrl-C leaves them saying what is queued)."""
        records = {r.key: st.read_record(r.run_dir) for r in plan.runs}
        table = st.sacct([rec["job_id"] for rec in records.values() if rec])
        code = 0
        for run in plan.selected:
            _check_run_dir(run)
            record = records[run.key]
            active = st.is_active(record, table)
            forced = plan.forces(run, force)  # what a chosen run reads resumes
            recheck = [] if forced else self._decided_at_start(plan, run, jobs)
            if not forced and not recheck and markers.is_complete(run):
                print(f"fcap: {run.key}: complete with the same config ({run.config_hash}), skipped")
                continue
            if active and not forced and record.get("config_hash") == run.config_hash:
                jobs[run.key] = record["job_id"]
                print(f"fcap: {run.key}: already queued as job {record['job_id']}, not resubmitted"
                      f"{_kept_options(run, record['job_id'])}")
                continue
            deps, blocked = self._dependencies(plan, run, jobs)
            if blocked:
                print(f"fcap: {run.key}: not submitted: {blocked}", file=sys.stderr)
                code = 1
                continue
            params = sbatch_parameters(
                profile, run.resources, job_name=f"{run.experiment}.{run.variant}.{run.stage}",
                where=f"stages.{run.stage}.resources", source=str(source),
                dependency="afterok:" + ":".join(deps.values()) if deps else None)
            if dry_run:
                self._print_dry(run, params, profile, deps, recheck)
                jobs[run.key] = f"<{run.key}>"
                continue
            if active:
                subprocess.run(["scancel", record["job_id"]], check=False)
                print(f"fcap: {run.key}: cancelled job {record['job_id']} (stale or --force)")
            try:
                jobs[run.key] = self._submit(plan, run, params, profile, deps, record,
                                             profile_name=str(source), force=forced,
                                             recheck=recheck)
            except SubmitError as err:
                if submitted:  # their jobs stay queued: the same command later submits the rest
                    raise SubmitError(
                        f"{err}. The {len(submitted)} job(s) submitted before it stay queued "
                        f"({', '.join(r.key for r in submitted)}): fix it and run the same "
                        f"command (queued jobs are not resubmitted), or scancel them") from err
                raise
            submitted.append(run)
        return code

    # -- pieces ------------------------------------------------------------------
    def _dependencies(self, plan, run, jobs: dict[str, str]) -> tuple[dict[str, str], str]:
        deps = {}
        for _name, dep in plan.dependencies(run):
            if dep.key in jobs:
                deps[dep.key] = jobs[dep.key]
            elif not markers.is_complete(dep):
                return {}, (f"dependency {dep.key} is not complete, not queued and not selected "
                            f"(add it with --stages, or fix what blocked it)")
        return deps, ""

    @staticmethod
    def _decided_at_start(plan, run, jobs: dict[str, str]) -> list[str]:
        """The queued dependencies whose outputs decide whether ``run``, complete with this
        config before, still is: after ``--stages label --force`` the merge is queued again,
        and pretraining, which reads its labels by content, is complete again if they come
        out byte for byte, and stale if not. Skipping it now would leave it stale; moving its
        outputs aside now, before the merge has run, would rerun it whatever comes out. Its
        job decides when it starts instead (``StageJob(recheck=True)``), as the local
        launcher does just before each stage. An array's elements would each decide, so an
        array is decided here."""
        if run.resources.array:
            return []
        done = markers.read_done(run)
        if not done or done.get("config_hash") != run.config_hash:
            return []
        return [dep.key for _name, dep in plan.dependencies(run) if dep.key in jobs]

    def _print_dry(self, run, params: dict, profile: ClusterProfile, deps: dict,
                   recheck: list[str]) -> None:
        folder = run.run_dir / st.LOG_DIR
        after = f" (afterok {', '.join(deps)})" if deps else ""
        print(f"=== {run.key}  task={run.task}  hash={run.config_hash}  -> sbatch{after}")
        if recheck:
            print(f"    {st.recheck_text(recheck)}")
        print(f"    dir: {run.run_dir}")
        print(render_sbatch(params, folder=folder, python=python_of(profile),
                            array=run.resources.array))
        if run.resources.world_size > 1:  # what every rank will see, from the jobs' own code
            print(describe_env(run.resources.nodes, run.resources.ntasks_per_node))

    def _submit(self, plan, run, params: dict, profile: ClusterProfile, deps: dict,
                old: dict | None, *, profile_name: str, force: bool = False,
                recheck: list[str] = ()) -> str:
        from submitit.core.utils import FailedJobError

        from fcap.launchers.slurm_job import StageJob

        markers.claim(run)  # before anything is written: a user's folder is refused untouched
        folder = run.run_dir / st.LOG_DIR
        folder.mkdir(parents=True, exist_ok=True)
        if not recheck:  # a recheck keeps its markers and outputs until its job decides
            # Clear completion markers first: the job may finish before we return.
            markers.mark_started(run, force=force)
            for stale in (run.run_dir / st.ARRAY_DIR).glob("*.json"):
                stale.unlink()
        config = markers.write_config(run)
        max_requeues = run.resources.max_requeues
        if profile.max_requeues is not None:
            max_requeues = min(max_requeues, profile.max_requeues)
        executor = make_executor(folder, params, python=python_of(profile),
                                 max_requeues=max_requeues)
        array = run.resources.array
        job = StageJob(str(config), run.variant, run.stage, plugins=plugin_specs(),
                       max_requeues=max_requeues, stop_grace_s=profile.stop_grace_s, array=array,
                       recheck=bool(recheck))
        try:
            if array:
                job_id = executor.submit_array([job] * array)[0].job_id.split("_")[0]
            else:
                job_id = executor.submit(job).job_id
        except FailedJobError as err:  # sbatch's own words, on its stderr
            said = "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
            raise SubmitError(
                f"sbatch refused {run.key}: {said} (the cluster profile {profile_name} and "
                f"stages.{run.stage}.resources decide what is asked for; fcap-run --dry-run "
                f"prints the sbatch script)") from err
        previous = ([old["job_id"]] + old.get("previous", [])) if old else []
        st.write_record(run.run_dir, {
            "job_id": job_id, "array": array, "config_hash": run.config_hash,
            "deps": deps, "profile": profile_name, "max_requeues": max_requeues,
            "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "previous": previous[:20],
            "recheck": list(recheck),
        })
        after = f" after {', '.join(f'{k} ({v})' for k, v in deps.items())}" if deps else ""
        kept = f"; {st.recheck_text(recheck)}" if recheck else ""
        print(f"fcap: {run.key}: submitted job {job_id}{after}{kept}; "
              f"slurm log: {st.slurm_log(run.run_dir, job_id, array=array)}", flush=True)
        return job_id

    def _wait(self, runs: list) -> int:
        states = st.wait(runs, poll_s=self.cfg.poll_s)
        failed = 0
        for key, (state, detail) in states.items():
            print(f"fcap: {key}: {state} {detail}", flush=True)
            failed += state == "failed"
        return 1 if failed else 0
