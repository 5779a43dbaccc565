"""The slurm launcher against the real local cluster: chains, dry run, failures, arrays, ranks."""
import json
import subprocess
from pathlib import Path

import pytest
from slurm_testing import (SMALL, cluster, done, experiment, fcap_run, job_paths,  # noqa: F401
                           record, status_lines, submit, wait, wait_for)

from fcap.experiment import build_plan
from fcap.launchers import slurm_status

pytestmark = pytest.mark.slurm


def test_two_stages_chain_with_afterok_and_status_shows_job_ids(tmp_path, cluster):
    path = experiment(tmp_path, "chain", {
        "first": {"task": "slurm_echo", "value": 2, "sleep_s": 3, "resources": SMALL},
        "second": {"task": "slurm_echo", "init_from": "first", "value": 5, "resources": SMALL}})
    out = submit(path)
    runs = tmp_path / "runs" / "chain" / "default"
    first, second = record(runs / "first")["job_id"], record(runs / "second")["job_id"]
    assert f"default/second: submitted job {second} after default/first ({first})" in out
    assert out.endswith(f"follow with: fcap-run status {path} --launcher slurm; when they are "
                        f"done: fcap-run report {path} --launcher slurm\n")  # the same runs
    held = subprocess.run(["scontrol", "show", "job", second], capture_output=True, text=True).stdout
    assert f"Dependency=afterok:{first}" in held  # SLURM holds it, not fcap

    lines = status_lines(path)
    assert f"job {first}" in lines["default/first"] and f"job {second}" in lines["default/second"]
    assert lines["default/second"].split()[1] == "pending"

    states = wait(path)
    assert {k: s for k, (s, _) in states.items()} == {"default/first": "done", "default/second": "done"}
    out_first = json.loads((runs / "first" / "out.json").read_text())
    out_second = json.loads((runs / "second" / "out.json").read_text())
    assert out_second["total"] == 7 and done(runs / "second")["summary"] == {"total": 7}
    assert out_first["finished"] <= out_second["started"]
    assert out_second["env"]["SLURM_JOB_ID"] == second and out_second["env"]["WORLD_SIZE"] == "1"
    # one CPU asked for, one torch thread: not one per core of the node (no CPU binding here)
    assert done(runs / "second")["env"]["torch_threads"] == SMALL["cpus_per_task"]
    lines = status_lines(path)
    assert lines["default/first"].split()[1:4] == ["done", "job", first]
    assert lines["default/second"].split()[1:4] == ["done", "job", second]

    again = submit(path)  # complete with the same config: nothing is resubmitted
    assert "complete with the same config" in again and record(runs / "second")["job_id"] == second


def test_a_stage_reading_another_experiments_stage_runs_after_it(tmp_path, cluster):
    """How Table 2 and the ablations read Table 1's labels: the job rebuilds its run from
    config.yaml, where the other experiment's stage is pinned (its jobs failed: KeyError)."""
    experiment(tmp_path, "prod", {"first": {"task": "slurm_echo", "value": 2, "resources": SMALL}})
    cons = experiment(tmp_path, "cons", {"use": {
        "task": "slurm_echo", "value": 5, "upstream": {"from": "prod.yaml:first"},
        "resources": SMALL}})
    out = submit(cons)
    first = record(tmp_path / "runs" / "prod" / "default" / "first")["job_id"]
    assert "default/use: submitted job " in out and f"after prod:default/first ({first})" in out
    states = wait(cons)
    assert {k: s for k, (s, _) in states.items()} == {"prod:default/first": "done",
                                                      "default/use": "done"}, states
    assert json.loads((tmp_path / "runs" / "cons" / "default" / "use" / "out.json").read_text()
                      )["total"] == 7


def test_dry_run_prints_the_sbatch_script_that_is_then_submitted(tmp_path, cluster):
    path = experiment(tmp_path, "dry", {"only": {"task": "slurm_echo", "resources": SMALL}})
    run_dir = tmp_path / "runs" / "dry" / "default" / "only"
    code, out = fcap_run(path, "--launcher", "slurm", "--dry-run")
    assert code == 0 and not (run_dir / "slurm.json").exists()
    script = out[out.index("#!/bin/bash"):]
    submit(path)
    job_id = record(run_dir)["job_id"]
    assert script.strip() == job_paths(run_dir, job_id).submission_file.read_text().strip()
    assert wait(path)["default/only"][0] == "done"


def test_a_failed_stage_cancels_its_dependent_and_status_says_why(tmp_path, cluster):
    path = experiment(tmp_path, "broken", {
        "bad": {"task": "slurm_echo", "fail": True, "resources": SMALL},
        "next": {"task": "slurm_echo", "init_from": "bad", "resources": SMALL}})
    submit(path)
    runs = tmp_path / "runs" / "broken" / "default"
    bad = record(runs / "bad")["job_id"]
    states = wait(path)
    state, detail = states["default/bad"]
    assert state == "failed" and "RuntimeError: stage bad fails on purpose" in detail
    assert f"log: {runs / 'bad' / 'log.txt'}" in detail
    assert "fails on purpose" in (runs / "bad" / "log.txt").read_text()
    state, detail = states["default/next"]
    assert state == "failed" and f"cancelled: dependency default/bad (job {bad}) failed" in detail
    rows = slurm_status.sacct([record(runs / "next")["job_id"]])
    assert [r.state for rows_ in rows.values() for r in rows_] == ["CANCELLED"]
    assert not (runs / "next" / "out.json").exists()
    lines = status_lines(path)
    assert lines["default/bad"].split()[1] == "failed" and "fails on purpose" in lines["default/bad"]
    assert "cancelled: dependency default/bad" in lines["default/next"]


def test_a_job_sbatch_refuses_is_a_config_error_and_the_same_command_submits_the_rest(
        tmp_path, cluster, capsys):
    """A cluster profile or resources the cluster cannot give: sbatch's own words, exit 2,
    no traceback; jobs queued before it stay queued and are not submitted twice."""
    too_big = {**SMALL, "mem_gb": 100000}  # the local node has a few GB
    path = experiment(tmp_path, "refused", {
        "first": {"task": "slurm_echo", "sleep_s": 8, "resources": SMALL},
        "second": {"task": "slurm_echo", "init_from": "first", "resources": too_big}})
    runs = tmp_path / "runs" / "refused" / "default"
    code, _ = fcap_run(path, "--launcher", "slurm")
    err = capsys.readouterr().err
    first = record(runs / "first")["job_id"]
    assert code == 2 and "Traceback" not in err
    assert ("fcap-run: sbatch refused default/second: sbatch: error: Memory specification can "
            "not be satisfied; ") in err
    local = Path(__file__).resolve().parents[3] / "slurm" / "local.yaml"
    assert (f"(the cluster profile {local} and stages.second.resources decide what is asked for; "
            f"fcap-run --dry-run prints the sbatch script). The 1 job(s) submitted before it stay "
            "queued (default/first): fix it and run the same command (queued jobs are not "
            "resubmitted), or scancel them") in err
    assert not (runs / "second" / "slurm.json").exists()  # no job: nothing to wait for
    # at once: sacct does not list the new job yet, squeue does (it was submitted twice)
    out = submit(path, "stages.second.resources.mem_gb=null")
    assert f"default/first: already queued as job {first}, not resubmitted\n" in out
    assert [s for s, _ in wait(path).values()] == ["done", "done"]
    assert record(runs / "first")["job_id"] == first and record(runs / "second")["deps"] == {
        "default/first": first}
    bad = tmp_path / "nopart.yaml"
    bad.write_text("partition: nopart\n")
    code, _ = fcap_run(path, "--launcher", "slurm", f"launcher.profile={bad}", "--force")
    assert code == 2 and ("fcap-run: sbatch refused default/first: sbatch: error: invalid "
                          "partition specified: nopart;") in capsys.readouterr().err


def test_a_queued_job_given_other_resources_says_it_keeps_its_own(tmp_path, cluster):
    """resources: and run options are outside the config hash: the same command with a longer
    time limit leaves the queued job as it is. It said only "already queued", so the user
    believed the new limit applied."""
    path = experiment(tmp_path, "kept", {"first": {"task": "slurm_echo", "sleep_s": 6,
                                                   "resources": SMALL}})
    submit(path)
    job = record(tmp_path / "runs" / "kept" / "default" / "first")["job_id"]
    out = submit(path, "stages.first.resources.time_min=9")
    assert (f"fcap: default/first: already queued as job {job}, not resubmitted; changed since "
            "it was submitted: stages.first.resources.time_min 5 -> 9; the queued job keeps what "
            f"it was submitted with: to use the new values, scancel {job} and run the same "
            "command (a stage resumes from its last checkpoint)") in out
    assert [s for s, _ in wait(path).values()] == ["done"]


def test_an_array_runs_one_shard_per_element_then_the_merge(tmp_path, cluster):
    path = experiment(tmp_path, "arr", {
        "shards": {"task": "slurm_shard", "num_shards": 3, "resources": {**SMALL, "array": 3}},
        "merge": {"task": "slurm_merge_shards", "after": ["shards"], "resources": SMALL}})
    submit(path)
    runs = tmp_path / "runs" / "arr" / "default"
    states = wait(path)
    assert [s for s, _ in states.values()] == ["done", "done"]
    assert record(runs / "shards")["array"] == 3
    # DONE.json can be there before slurmdbd has recorded every element (sacct lags by
    # seconds): a done array's count comes from its elements' own markers, at once
    shards, job = build_plan(path).get("default", "shards"), record(runs / "shards")["job_id"]
    assert slurm_status.describe(shards, {}) == ("done", f"job {job} (array of 3: 3 completed)")
    assert done(runs / "shards")["summary"]["elements"] == [{"shard": 0}, {"shard": 1}, {"shard": 2}]
    merged = json.loads((runs / "merge" / "merged.json").read_text())
    assert [m["index"] for m in merged] == [0, 1, 2]
    assert len({m["job"] for m in merged}) == 3  # three SLURM jobs, one per element


def test_two_tasks_get_a_working_torch_distributed_environment(tmp_path, cluster):
    path = experiment(tmp_path, "ranks", {"reduce": {
        "task": "slurm_allreduce", "resources": {"tasks_per_node": 2, "cpus_per_task": 1, "time_min": 5}}})
    submit(path)
    run_dir = tmp_path / "runs" / "ranks" / "default" / "reduce"
    assert wait(path)["default/reduce"][0] == "done"
    ranks = [json.loads((run_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["sum"] for r in ranks] == [3.0, 3.0] and [r["world"] for r in ranks] == [2, 2]
    assert [r["env"]["RANK"] for r in ranks] == ["0", "1"]
    assert ranks[0]["env"]["MASTER_PORT"] == ranks[1]["env"]["MASTER_PORT"]
    assert "all_reduce -> 3.0" in (run_dir / "log.txt").read_text()
    assert "rank 1 of 2: all_reduce -> 3.0" in (run_dir / "log.rank1.txt").read_text()


def test_a_stage_that_ignores_the_signal_is_requeued_and_runs_again(tmp_path, cluster):
    profile = tmp_path / "fast.yaml"
    profile.write_text("partition: debug\nsignal_delay_s: 20\nstop_grace_s: 1\nmax_requeues: 2\n")
    path = experiment(tmp_path, "requeue", {"slow": {"task": "slurm_echo", "sleep_s": 6,
                                                     "resources": SMALL}})
    submit(path, f"launcher.profile={profile}")
    run_dir = tmp_path / "runs" / "requeue" / "default" / "slow"
    job_id = record(run_dir)["job_id"]
    wait_for(lambda: "stage default/slow" in _read(run_dir / "log.txt"), timeout_s=60)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    assert wait(path)["default/slow"][0] == "done"
    out = json.loads((run_dir / "out.json").read_text())
    assert out["env"]["SLURM_RESTART_COUNT"] == "1" and out["extra"]["requeues"] == 1
    assert "requeueing job" in job_paths(run_dir, job_id).stderr.read_text()
    assert done(run_dir)["attempt"] == 2  # its wall time is the second attempt's alone


def _read(path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""

