"""DeepSpeed training under SLURM: two ranks, USR2 mid-run, requeue, exact resume.

The task (tests/fixtures/plugins/slurm_tasks.py) drives fcap's Trainer on a toy
adapter; variants ``full`` and ``preempted`` have the same config, so the
preempted run must end with the same adapter weights.
"""
import json
import subprocess

import pytest
import torch
from slurm_testing import (cluster, done, experiment, job_paths, record, submit,  # noqa: F401
                           wait, wait_for)

pytestmark = pytest.mark.slurm

TRAIN = {"task": "slurm_toy_train", "steps": 12, "save_every": 4, "step_sleep_s": 0.4,
         "resources": {"tasks_per_node": 2, "cpus_per_task": 1, "time_min": 5}}


def test_two_rank_training_preempted_mid_run_resumes_to_the_same_weights(tmp_path, cluster):
    path = experiment(tmp_path, "ds", {"train": TRAIN}, variants={"full": {}, "preempted": {}})
    submit(path)
    runs = tmp_path / "runs" / "ds"
    pre = runs / "preempted" / "train"
    job_id = record(pre)["job_id"]

    wait_for(lambda: (pre / "checkpoints" / "step-00000004" / "MANIFEST.json").is_file())
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    # Every rank saves the checkpoint taken on the signal (a step that is not a multiple of 4).
    interrupt = wait_for(lambda: [p for p in (pre / "checkpoints").glob("step-*")
                                   if int(p.name[5:]) % 4 and (p / "MANIFEST.json").is_file()])
    assert {"rank-00000.pt", "rank-00001.pt"} <= {p.name for p in interrupt[0].iterdir()}
    signalled_step = int(interrupt[0].name[5:])

    states = wait(path, timeout_s=300)
    assert {k: s for k, (s, _) in states.items()} == {"full/train": "done", "preempted/train": "done"}
    assert done(runs / "full" / "train")["summary"] == {"world_size": 2, "resumed_from": None, "step": 12}
    assert done(pre)["summary"] == {"world_size": 2, "resumed_from": signalled_step, "step": 12}
    log = job_paths(pre, job_id).stderr.read_text()
    assert "requeueing job" in log and f"resumed from {interrupt[0]}" in log
    for variant in ("full", "preempted"):  # both ranks ran and logged
        assert "rank 1: finished at step 12" in (runs / variant / "train" / "log.rank1.txt").read_text()

    full = torch.load(runs / "full" / "train" / "adapters.pt")
    resumed = torch.load(pre / "adapters.pt")
    assert full.keys() == resumed.keys() and all(torch.equal(full[k], resumed[k]) for k in full)
    first = json.loads((pre / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] >= 1  # the metrics log survived the requeue
