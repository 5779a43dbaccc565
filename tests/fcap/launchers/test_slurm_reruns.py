"""Stages that run again through the real scheduler: what reads them is decided when its job starts."""
import json
from collections import Counter

import pytest
from slurm_testing import (PLUGIN, SMALL, cluster, done, experiment, fcap_run,  # noqa: F401
                           record, submit, wait)

pytestmark = pytest.mark.slurm

TOY = PLUGIN.parent / "toy_tasks.py"


def test_a_finished_stage_made_stale_by_a_rerun_shows_pending_and_why(tmp_path, cluster):
    """Its job completed and wrote DONE.json; then the stage it started from ran again. It was
    shown "failed: job N completed without writing DONE.json"."""
    path = experiment(tmp_path, "stale", {
        "first": {"task": "toy_write", "resources": SMALL},
        "second": {"task": "toy_write", "init_from": "first", "resources": SMALL}},
        plugins=[str(PLUGIN), str(TOY)])
    submit(path)
    wait(path)
    second = record(tmp_path / "runs" / "stale" / "default" / "second")["job_id"]
    submit(path, "--stages", "first", "--force")
    states = wait(path)  # settles: second's job has ended, nothing is queued for it
    assert states["default/second"] == ("pending", (
        f"default/first ran again since this stage completed (it last ran as job {second}); "
        "the next fcap-run submits it again"))
    code, status = fcap_run("status", path)
    assert code == 0 and "default/second                           pending  default/first ran again" in status


def test_a_stage_queued_behind_a_rerun_is_kept_when_what_it_reads_comes_out_the_same(
        tmp_path, cluster):
    """The local launcher checks each stage just before it runs; sbatch jobs are queued
    before their dependencies have run. third (two ranks) reads second's out.json by
    reference and second comes out byte for byte: third is kept, as locally. fifth (two
    ranks) reads fourth's, whose out.json has new times in it: fifth runs again."""
    two = {"tasks_per_node": 2, "cpus_per_task": 1, "time_min": 5}
    path = experiment(tmp_path, "recheck", {
        "first": {"task": "toy_write", "value": 1, "resources": SMALL},
        "second": {"task": "toy_write", "init_from": "first", "resources": SMALL},
        "third": {"task": "slurm_allreduce", "upstream": {"from": "second"}, "resources": two},
        "fourth": {"task": "slurm_echo", "init_from": "first", "resources": SMALL},
        "fifth": {"task": "slurm_allreduce", "upstream": {"from": "fourth"}, "resources": two}},
        plugins=[str(PLUGIN), str(TOY)])
    runs = tmp_path / "runs" / "recheck" / "default"
    stages = ("first", "second", "third", "fourth", "fifth")
    submit(path)
    assert {s for s, _ in wait(path).values()} == {"done"}
    before = {s: done(runs / s)["id"] for s in stages}
    submit(path, "--stages", "first", "--force")
    assert {s for s, _ in wait(path).values()} == {"pending", "done"}  # second..fifth stale
    forced = done(runs / "first")["id"]

    code, dry = fcap_run(path, "--launcher", "slurm", "--dry-run")
    assert code == 0
    waits = ("complete before: its job checks again when it starts and runs the stage only if "
             "default/{} changed what it reads")
    assert waits.format("second") in dry and waits.format("fourth") in dry
    out = submit(path)
    assert "default/first: complete with the same config" in out
    assert "default/third: submitted job" in out and waits.format("second") in out
    assert record(runs / "second")["recheck"] == []  # first ran again: it runs, moved aside now
    assert not (runs / "second" / "out.json").exists()
    assert record(runs / "third")["recheck"] == ["default/second"]
    assert (runs / "third" / "rank1.json").exists()  # not moved aside at submission
    states = wait(path)
    assert {s for s, _ in states.values()} == {"done"}, states

    after = {s: done(runs / s)["id"] for s in stages}
    assert after["first"] == forced
    assert after["third"] == before["third"]  # kept
    assert all(after[s] != before[s] for s in ("second", "fourth", "fifth"))
    calls = Counter((runs.parent / "calls.txt").read_text().split())  # toy_write's runs
    assert calls == {"default/first": 2, "default/second": 2}
    third_log = (runs / "third" / "log.txt").read_text()
    assert ("stage default/third was queued behind its dependencies and is still complete now "
            "that they have run") in third_log
    assert third_log.count("all_reduce -> 3.0") == 1  # ran once, in the first submission
    fifth_log = (runs / "fifth" / "log.txt").read_text()
    assert "stage default/fifth starts from scratch: input changed: upstream (out.json)" in fifth_log
    assert "all_reduce -> 3.0" in fifth_log  # the fresh log: the old one was moved aside
    for rank in (0, 1):  # both ranks ran again, after the move: their files are the new ones
        assert json.loads((runs / "fifth" / f"rank{rank}.json").read_text())["env"][
            "SLURM_JOB_ID"] == record(runs / "fifth")["job_id"]
    assert "rank 1 of 2" in (runs / "fifth" / "log.rank1.txt").read_text()
    code, status = fcap_run("status", path)
    assert code == 0 and [line.split()[1] for line in status.splitlines()[1:]] == ["done"] * 5
