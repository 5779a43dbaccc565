"""What runs inside a SLURM job (fcap/launchers/slurm_job.py), without a cluster: a job
submitted while its stage was complete decides when it starts whether to run it again."""
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from fcap import cli
from fcap.experiment import build_plan
from fcap.launchers import slurm_job

TOY = Path(__file__).resolve().parents[2] / "fixtures" / "plugins" / "toy_tasks.py"
RANK1 = """
import json, sys
from fcap.launchers.slurm_job import StageJob
job = StageJob(sys.argv[1], "default", "second", plugins=[sys.argv[2]], max_requeues=0,
               stop_grace_s=1.0, recheck=True)
print("SUMMARY", json.dumps(job()))
"""


def completed_pair(tmp_path: Path):
    """first -> second (second reads first's out.json by reference), both run locally."""
    path = tmp_path / "pair.yaml"
    path.write_text(yaml.safe_dump({
        "name": "pair", "output_root": str(tmp_path / "runs"), "plugins": [str(TOY)],
        "stages": {"first": {"task": "toy_write", "value": 1},
                   "second": {"task": "toy_write", "upstream": {"from": "first"}}}}))
    assert cli.main([str(path), "--launcher", "local"]) == 0
    return build_plan(path).get("default", "second")


def rank1_env(job_id: str) -> dict:
    """What SLURM sets for task 1 of a one-node, two-task job."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update({"SLURM_JOB_ID": job_id, "SLURM_NTASKS": "2", "SLURM_JOB_NUM_NODES": "1",
                "SLURM_JOB_NODELIST": "n1", "SLURM_NODEID": "0", "SLURM_PROCID": "1",
                "SLURM_LOCALID": "1", "SLURM_RESTART_COUNT": "0", "SUBMITIT_EXECUTOR": "slurm"})
    return env


def test_other_ranks_read_no_config_before_rank_0_has_decided(tmp_path):
    """CI saw a recheck job fail with exit code 9: rank 0 had moved config.yaml aside with the
    old outputs when rank 1, a little late, read it to build its plan. Rank 1 now waits for the
    answer first, whatever the run directory holds meanwhile."""
    run = completed_pair(tmp_path)
    config = run.run_dir / "config.yaml"
    moved = tmp_path / "config.yaml.moved"
    config.rename(moved)  # where rank 0's move aside leaves it, for a moment
    child = subprocess.Popen([sys.executable, "-c", RANK1, str(config), str(TOY)],
                             env=rank1_env("4711"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3.0)
        assert child.poll() is None, child.communicate()  # waiting, not failed on config.yaml
        moved.rename(config)
        slurm_job.write_json_atomic(run.run_dir / "slurm" / "recheck.4711.0.json", {"kept": True})
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    done = json.loads((run.run_dir / "DONE.json").read_text())
    assert f"SUMMARY {json.dumps(done['summary'])}" in out


def test_rank_0_puts_config_back_before_it_answers_run_again(tmp_path, monkeypatch):
    """What it reads changed: the outputs are moved aside, config.yaml is written again, and
    only then does the answer tell the other ranks to run the stage."""
    run = completed_pair(tmp_path)
    upstream = run.run_dir.parent / "first" / "out.json"
    upstream.write_text(upstream.read_text().replace('"total": 1', '"total": 5'))
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    assert slurm_job._recheck(run, job_id="4712") is False
    answer = json.loads((run.run_dir / "slurm" / "recheck.4712.0.json").read_text())
    assert answer == {"kept": False}
    previous = list(run.run_dir.glob(".previous-*.old"))
    assert len(previous) == 1 and (previous[0] / "out.json").exists()
    assert not (run.run_dir / "out.json").exists() and not (run.run_dir / "DONE.json").exists()
    assert yaml.safe_load((run.run_dir / "config.yaml").read_text()) == run.resolved


def test_rank_0_keeps_a_stage_whose_inputs_came_out_the_same(tmp_path, monkeypatch):
    run = completed_pair(tmp_path)
    before = (run.run_dir / "DONE.json").read_text()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    assert slurm_job._recheck(run, job_id="4713") is True
    assert json.loads((run.run_dir / "slurm" / "recheck.4713.0.json").read_text()) == {"kept": True}
    assert (run.run_dir / "DONE.json").read_text() == before
    assert not list(run.run_dir.glob(".previous-*.old"))


def test_a_job_gets_no_more_torch_threads_than_its_cpus(monkeypatch):
    import torch

    from fcap.launchers.slurm_job import limit_threads

    threads = torch.get_num_threads()
    try:
        for given in ("", "0", "x", str(threads), str(threads + 8)):  # unset, odd, no fewer
            monkeypatch.setenv("SLURM_CPUS_PER_TASK", given)
            assert limit_threads() is None and torch.get_num_threads() == threads
        if threads > 1:
            monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
            assert limit_threads() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
