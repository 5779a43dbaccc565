"""Stages that run again through the real scheduler: what reads them is decided when its job starts."""
import pytest
from slurm_testing import (PLUGIN, SMALL, cluster, experiment, fcap_run, record,  # noqa: F401
                           submit, wait)

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
