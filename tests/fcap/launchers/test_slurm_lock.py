"""A SLURM job takes its stage's run-directory lock too: a stage being run elsewhere is
not run twice, and the job writes no marker over the other run's."""
import os
import socket

import pytest
from slurm_testing import SMALL, cluster, experiment, record, submit, wait  # noqa: F401

from fcap.experiment.lock import RunLock
from fcap.launchers import slurm_status

pytestmark = pytest.mark.slurm


def test_a_job_whose_stage_is_being_run_elsewhere_fails_and_names_the_holder(tmp_path, cluster):
    path = experiment(tmp_path, "locked", {
        "first": {"task": "slurm_echo", "sleep_s": 3, "resources": SMALL},
        "second": {"task": "slurm_echo", "init_from": "first", "resources": SMALL}})
    submit(path)
    second = tmp_path / "runs" / "locked" / "default" / "second"
    job_id = record(second)["job_id"]
    with RunLock(second, what="stage default/second"):  # "another fcap-run" holds it
        states = wait(path)
    assert states["default/first"][0] == "done"
    assert states["default/second"][0] == "failed"
    err = slurm_status.slurm_log(second, job_id).read_text()
    assert (f"stage default/second is being run by pid {os.getpid()} on host "
            f"{socket.gethostname()} since ") in err
    assert not (second / "out.json").exists() and not (second / "FAILED.json").exists()

    submit(path)  # free again: the resubmitted job runs it
    assert wait(path)["default/second"][0] == "done"
    assert (second / "out.json").exists()
