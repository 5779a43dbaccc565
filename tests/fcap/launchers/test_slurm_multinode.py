"""The slurm launcher on two nodes: `bash slurm/start_cluster.sh --nodes 2` (what .ci/run starts).

Nodes n1 and n2 are two slurmd on this one machine: SLURM_NODEID, SLURMD_NODENAME
and the node list differ per task, the host, 127.0.0.1 and the file system do
not (slurm/README.md says what that cannot catch). ``pytest -m slurm -k multinode``
runs these tests alone.
"""
import json
import subprocess

import pytest
import torch
from slurm_testing import (cluster, done, experiment, job_paths, record,  # noqa: F401
                           status_lines, submit, wait, wait_for)

from fcap.launchers import slurm_status

pytestmark = pytest.mark.slurm

PROFILE = "launcher.profile=local_2nodes"  # slurm/local_2nodes.yaml: max_nodes 2
TWO_NODES = {"nodes": 2, "tasks_per_node": 1, "cpus_per_task": 1, "time_min": 5}
ONE_NODE = {"nodes": 1, "tasks_per_node": 2, "cpus_per_task": 1, "time_min": 5}
TRAIN = {"task": "slurm_toy_train", "steps": 12, "save_every": 4}


@pytest.fixture(scope="session")
def two_nodes(cluster):
    """Fail (not skip) where the cluster is up with fewer than two nodes."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True,
                         timeout=30).stdout
    up = sorted({n for n, s in (line.split() for line in out.splitlines())
                 if s in ("idle", "mixed", "allocated")})
    if len(up) < 2:
        pytest.fail(f"the multinode tests need 2 nodes up, sinfo shows {out.split() or 'none'}; "
                    "run: bash slurm/start_cluster.sh --nodes 2")
    return up


def node_lists(job_id: str) -> list[str]:
    """sacct's NodeList of each row (array element) of a job."""
    return [row.nodes for rows in slurm_status.sacct([job_id]).values() for row in rows]


def rank_env(run_dir, rank: int) -> dict:
    return json.loads((run_dir / f"rank{rank}.env.json").read_text())


def adapters(run_dir) -> dict:
    return torch.load(run_dir / "adapters.pt")


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_multinode_training_on_two_nodes_equals_one_node_two_tasks_bitwise(tmp_path, two_nodes):
    path = experiment(tmp_path, "mn", {"train": {**TRAIN, "resources": TWO_NODES}},
                      variants={"two_nodes": {},
                                "one_node": {"stages.train.resources": ONE_NODE}})
    submit(path, PROFILE)
    runs = tmp_path / "runs" / "mn"
    states = wait(path, timeout_s=300)
    assert {k: s for k, (s, _) in states.items()} == {"two_nodes/train": "done",
                                                     "one_node/train": "done"}, states
    two, one = runs / "two_nodes" / "train", runs / "one_node" / "train"
    assert node_lists(record(two)["job_id"]) == ["n[1-2]"]

    # Each rank learnt where it runs from SLURM, and every rank agrees on the master.
    envs = [rank_env(two, r) for r in (0, 1)]
    assert [(e["SLURMD_NODENAME"], e["NODE_RANK"], e["RANK"], e["LOCAL_RANK"]) for e in envs] == [
        ("n1", "0", "0", "0"), ("n2", "1", "1", "0")]
    assert {(e["MASTER_ADDR"], e["MASTER_PORT"], e["WORLD_SIZE"], e["LOCAL_WORLD_SIZE"])
            for e in envs} == {("n1", envs[0]["MASTER_PORT"], "2", "1")}
    envs = [rank_env(one, r) for r in (0, 1)]
    assert len({e["SLURMD_NODENAME"] for e in envs}) == 1
    assert [(e["NODE_RANK"], e["LOCAL_RANK"], e["LOCAL_WORLD_SIZE"]) for e in envs] == [
        ("0", "0", "2"), ("0", "1", "2")]

    assert done(two)["summary"] == done(one)["summary"] == {
        "world_size": 2, "resumed_from": None, "step": 12}
    assert "rank 1: finished at step 12" in (two / "log.rank1.txt").read_text()
    assert_bitwise_equal(adapters(two), adapters(one))


def test_multinode_training_preempted_on_both_nodes_resumes_bitwise(tmp_path, two_nodes):
    train = {**TRAIN, "step_sleep_s": 0.4, "resources": TWO_NODES}
    path = experiment(tmp_path, "mnpre", {"train": train}, variants={"full": {}, "preempted": {}})
    submit(path, PROFILE)
    runs = tmp_path / "runs" / "mnpre"
    pre = runs / "preempted" / "train"
    job_id = record(pre)["job_id"]

    wait_for(lambda: (pre / "checkpoints" / "step-00000004" / "MANIFEST.json").is_file())
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # every task, both nodes
    interrupt = wait_for(lambda: [p for p in (pre / "checkpoints").glob("step-*")
                                   if int(p.name[5:]) % 4 and (p / "MANIFEST.json").is_file()])
    # rank 0 on n1 and rank 1 on n2 each wrote their part of the checkpoint
    assert {"rank-00000.pt", "rank-00001.pt"} <= {p.name for p in interrupt[0].iterdir()}
    signalled_step = int(interrupt[0].name[5:])

    states = wait(path, timeout_s=300)
    assert {k: s for k, (s, _) in states.items()} == {"full/train": "done",
                                                     "preempted/train": "done"}, states
    assert done(pre)["summary"] == {"world_size": 2, "resumed_from": signalled_step, "step": 12}
    logs = [job_paths(pre, job_id, task).stderr.read_text() for task in (0, 1)]
    for rank, log in enumerate(logs):  # the signal reached the task on each node
        assert f"rank {rank}: SIGUSR2 received" in log, log[-2000:]
    assert "requeueing job" in logs[0] and f"resumed from {interrupt[0]}" in logs[0]
    # the requeued job came back on both nodes
    envs = [rank_env(pre, r) for r in (0, 1)]
    assert [(e["SLURMD_NODENAME"], e["SLURM_RESTART_COUNT"]) for e in envs] == [("n1", "1"),
                                                                                 ("n2", "1")]
    assert node_lists(job_id) == ["n[1-2]"]
    assert_bitwise_equal(adapters(runs / "full" / "train"), adapters(pre))


def test_multinode_pseudolabel_array_over_both_nodes_merges_exactly_once(tmp_path, two_nodes,
                                                                         monkeypatch):
    from fcap.data.shapes import ShapesWorldConfig, ensure_shapes_world
    from fcap.pseudolabel.blip_labeler import tiny_blip_dir

    videos_n, scenes = 3, 2
    monkeypatch.setenv("FCAP_CACHE", str(tmp_path / "cache"))  # jobs inherit the environment
    tiny_blip_dir()  # built once here rather than raced by three jobs
    world = ShapesWorldConfig(msrvtt_videos=(1, 1, 1), msvd_videos=(1, 1, 1), howto_videos=videos_n,
                              howto_scenes=scenes, laion_images=1, laion_shard_size=1)
    videos = ensure_shapes_world(str(tmp_path / "shapes"), world)["howto100m"]
    path = experiment(tmp_path, "mnlabel", {
        "label": {"task": "pseudolabel", "videos": videos, "num_shards": 3, "frame_size": 64,
                  "num_workers": 0, "sampling": {"max_new_tokens": 4},
                  "captioner": {"name": "blip", "source": "tiny", "cpu_threads": 1},
                  # a whole node per element: two run at once, one on each node
                  "resources": {"array": 3, "cpus_per_task": 2, "time_min": 10}},
        "merge": {"task": "pseudolabel_merge", "after": ["label"], "report_clips": 0,
                  "resources": {"cpus_per_task": 1, "time_min": 10}}})
    submit(path, PROFILE)
    runs = tmp_path / "runs" / "mnlabel" / "default"
    states = wait(path, timeout_s=300)
    assert [s for s, _ in states.values()] == ["done", "done"], states
    assert set(node_lists(record(runs / "label")["job_id"])) == {"n1", "n2"}

    elements = done(runs / "label")["summary"]["elements"]
    assert [e["shards"] for e in elements] == [[f"shard-0000{i}-of-00003"] for i in range(3)]
    records = [json.loads(x) for x in (runs / "merge" / "pseudolabels.jsonl").read_text().splitlines()]
    keys = [(r["video_id"], r["clip_index"]) for r in records]
    assert len(keys) == len(set(keys)) == videos_n * scenes
    assert json.loads((runs / "merge" / "index.json").read_text())["counts"]["clips"] == videos_n * scenes


def test_multinode_status_shows_the_node_list_of_a_running_stage(tmp_path, two_nodes):
    path = experiment(tmp_path, "mnstatus", {"reduce": {
        "task": "slurm_allreduce", "hold_s": 30, "resources": TWO_NODES}})
    submit(path, PROFILE)
    run_dir = tmp_path / "runs" / "mnstatus" / "default" / "reduce"
    job_id = record(run_dir)["job_id"]
    wait_for(lambda: (run_dir / "rank0.json").is_file())  # all_reduce done, holding

    def running_line():  # sacct can lag the job's start by a few seconds
        line = status_lines(path)["default/reduce"]
        return line if line.split()[1] == "running" else None

    line = wait_for(running_line, timeout_s=25)
    assert line.split()[1:4] == ["running", "job", job_id] and f"job {job_id} on n[1-2];" in line, line

    assert wait(path)["default/reduce"][0] == "done"
    ranks = [json.loads((run_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["sum"] for r in ranks] == [3.0, 3.0]  # gloo across the two nodes
    assert [r["env"]["SLURMD_NODENAME"] for r in ranks] == ["n1", "n2"]
    assert status_lines(path)["default/reduce"].split()[1] == "done"
