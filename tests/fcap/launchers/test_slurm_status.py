"""slurm_status.describe without a cluster: what sacct says, given to it as a table."""
import json

import yaml

from fcap import cli
from fcap.experiment import build_plan
from fcap.launchers import slurm_status
from fcap.launchers.slurm_status import JobRow
from slurm_testing import PLUGIN

TOY = PLUGIN.parent / "toy_tasks.py"


def _complete_second(tmp_path):
    """A two-stage experiment run locally; second's slurm.json as fcap-run writes it for a
    stage submitted while complete, queued behind first (slurm.py's recheck)."""
    path = tmp_path / "recheck.yaml"
    path.write_text(yaml.safe_dump({
        "name": "recheck", "output_root": str(tmp_path / "runs"), "plugins": [str(TOY)],
        "stages": {"first": {"task": "toy_write"},
                   "second": {"task": "toy_write", "init_from": "first"}}}))
    assert cli.main([str(path)]) == 0
    second = build_plan(path).get("default", "second")
    slurm_status.write_record(second.run_dir, {"job_id": "777", "config_hash": second.config_hash,
                                               "deps": {"default/first": "776"},
                                               "recheck": ["default/first"]})
    return second


def test_a_stage_submitted_while_complete_is_not_done_before_its_job_decides(tmp_path):
    """Its outputs stay in place until its job starts, so its markers say complete; status and
    launcher.wait said "done" while the job was still queued behind the stage that reruns."""
    second = _complete_second(tmp_path)
    logs = (f"log: {second.run_dir / 'log.txt'}; "
            f"slurm log: {slurm_status.slurm_log(second.run_dir, '777')}")
    waits = ("complete before: its job checks again when it starts and runs the stage only if "
             "default/first changed what it reads")
    row = {s: {"777": [JobRow("777", s, "0:0", "", "node1")]}
           for s in ("PENDING", "RUNNING", "COMPLETED")}
    assert slurm_status.describe(second, row["PENDING"]) == ("pending", f"job 777; {waits}")
    assert slurm_status.describe(second, row["RUNNING"]) == (
        "running", f"job 777 on node1; {logs}; {waits}")
    assert slurm_status.describe(second, {}) == ("pending",
                                                 f"job 777 not (yet) known to sacct; {waits}")
    assert slurm_status.describe(second, row["COMPLETED"]) == ("done", "job 777")
    # sacct lags or is unavailable, but the job has left its answer: it has decided
    answer = second.run_dir / slurm_status.LOG_DIR / "recheck.777.0.json"
    answer.parent.mkdir(exist_ok=True)
    answer.write_text(json.dumps({"kept": True}))
    assert slurm_status.describe(second, {}) == ("done", "job 777")


def test_wait_does_not_settle_on_a_queued_recheck_job(tmp_path, monkeypatch):
    second = _complete_second(tmp_path)
    monkeypatch.setattr(slurm_status, "sacct",
                        lambda ids: {"777": [JobRow("777", "PENDING", "0:0", "Dependency")]})
    monkeypatch.setattr(slurm_status.time, "sleep", lambda s: None)
    states = slurm_status.wait([second], poll_s=0, timeout_s=0.05)
    assert states[second.key][0] == "pending"


def test_a_job_failed_by_another_rank_names_that_rank_and_its_error(tmp_path):
    """Only rank 0 writes FAILED.json. When rank 1 raised, srun killed rank 0 and sacct said
    only "FAILED (exit code 9:0)"; the status now quotes the rank that failed."""
    second = _complete_second(tmp_path)
    (second.run_dir / "DONE.json").unlink()
    logs = second.run_dir / slurm_status.LOG_DIR
    logs.mkdir(exist_ok=True)
    (logs / "777_0_log.err").write_text(
        "2026-12-07 07:55:10,001 INFO fcap.launcher.slurm: job 777 rank 0/2\n"
        "2026-12-07 07:55:10,500 INFO fcap.second: stage default/second\n")
    (logs / "777_1_log.err").write_text(
        "2026-12-07 07:55:10,002 INFO fcap.launcher.slurm: job 777 rank 1/2\n"
        "Traceback (most recent call last):\n"
        '  File "/x/fcap/config/loader.py", line 96, in read_yaml\n'
        "    raise ConfigError(...)\n"
        "fcap.config.errors.ConfigError: invalid configuration: 1 problem\n"
        "  - /x/config.yaml: (top level): cannot read config file: No such file or directory\n")
    (logs / "777_10_log.err").write_text("Traceback (most recent call last):\nOSError: later task\n")
    failed = {"777": [JobRow("777", "FAILED", "9:0", "", "node1")]}
    state, detail = slurm_status.describe(second, failed)
    assert state == "failed"
    assert detail.startswith(
        "job 777: SLURM state FAILED (exit code 9:0); task 1 failed: fcap.config.errors."
        "ConfigError: invalid configuration: 1 problem - /x/config.yaml: (top level): cannot "
        f"read config file: No such file or directory ({logs / '777_1_log.err'}); log: ")
    (logs / "777_1_log.err").write_text("no traceback here\n")
    assert slurm_status.describe(second, failed)[1].startswith(
        "job 777: SLURM state FAILED (exit code 9:0); task 10 failed: OSError: later task (")
    for name in ("777_1_log.err", "777_10_log.err"):
        (logs / name).unlink()
    assert slurm_status.describe(second, failed)[1].startswith(
        "job 777: SLURM state FAILED (exit code 9:0); log: ")
