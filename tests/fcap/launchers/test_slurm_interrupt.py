"""Ctrl-C in fcap-run --launcher slurm: the jobs are the cluster's; say which, and how to go on."""
import pytest
from slurm_testing import SMALL, cluster, experiment, fcap_run, record, submit, wait  # noqa: F401

from fcap.launchers import slurm_status
from fcap.launchers.slurm import SlurmLauncher

pytestmark = pytest.mark.slurm


def test_ctrl_c_while_waiting_leaves_the_jobs_running_and_says_so(tmp_path, cluster, monkeypatch,
                                                                 capsys):
    path = experiment(tmp_path, "stopwait", {"slow": {"task": "slurm_echo", "sleep_s": 2,
                                                      "resources": SMALL}})

    def ctrl_c(*_args, **_kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(slurm_status, "wait", ctrl_c)
    code, out = fcap_run(path, "--launcher", "slurm", "launcher.wait=true")
    job = record(tmp_path / "runs" / "stopwait" / "default" / "slow")["job_id"]
    err = capsys.readouterr().err
    assert code == 130 and "fcap-run: interrupted" in err
    assert ("fcap: stopped waiting; the 1 job(s) keep running on the cluster: follow with: "
            f"fcap-run status {path} launcher.wait=true --launcher slurm; cancel with: "
            f"scancel {job}\n") in err
    monkeypatch.undo()
    assert wait(path)["default/slow"][0] == "done"  # it ran on


def test_ctrl_c_while_submitting_names_the_queued_jobs_and_the_same_command_goes_on(
        tmp_path, cluster, monkeypatch, capsys):
    path = experiment(tmp_path, "stopsub", {
        "first": {"task": "slurm_echo", "sleep_s": 4, "resources": SMALL},
        "second": {"task": "slurm_echo", "init_from": "first", "resources": SMALL}})
    real = SlurmLauncher._submit

    def ctrl_c_at_second(self, plan, run, *args, **kw):
        if run.stage == "second":
            raise KeyboardInterrupt
        return real(self, plan, run, *args, **kw)

    monkeypatch.setattr(SlurmLauncher, "_submit", ctrl_c_at_second)
    code, _ = fcap_run(path, "--launcher", "slurm")
    runs = tmp_path / "runs" / "stopsub" / "default"
    first = record(runs / "first")["job_id"]
    assert code == 130 and not (runs / "second" / "slurm.json").exists()
    assert (f"fcap: interrupted while submitting: the 1 job(s) submitted before stay queued "
            f"(job {first}): run the same command to submit the rest (queued jobs are not "
            f"resubmitted), or scancel {first}\n") in capsys.readouterr().err
    monkeypatch.undo()
    out = submit(path)
    assert f"default/first: already queued as job {first}, not resubmitted" in out
    assert f"default/second: submitted job {record(runs / 'second')['job_id']} after default/first ({first})" in out
    assert [s for s, _ in wait(path).values()] == ["done", "done"]
