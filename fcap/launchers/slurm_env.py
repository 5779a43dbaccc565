"""torch.distributed's environment for one task of a SLURM job, on every node.

Every task exports RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, NODE_RANK,
MASTER_ADDR and MASTER_PORT before anything initialises torch.distributed or
DeepSpeed (without MASTER_ADDR, ``deepspeed.init_distributed`` falls back to
MPI discovery or waits for a rendezvous that never comes).

submitit's ``TorchDistributedEnvironment`` derives them from SLURM's variables
(``SLURM_PROCID``, ``SLURM_LOCALID``, ``SLURM_NTASKS``, ``SLURM_JOB_NUM_NODES``,
and ``SLURM_JOB_NODELIST``, whose first host is the master on every node).
fcap adds two things it does not: NODE_RANK (``SLURM_NODEID``), and a master
port every task derives alike from the job id *and the requeue count*, given
to it through MASTER_PORT. The port must not come from the environment: sbatch
exports the submitter's, so a MASTER_PORT there (a submission from inside a
torchrun) would otherwise be reused by every job.
"""
from __future__ import annotations

import os
import re

DIST_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK",
             "MASTER_ADDR", "MASTER_PORT")


def restart_count() -> int:
    """How many times SLURM has requeued this job (0 on the first run)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)


# Below Linux's default ephemeral range (32768-60999, net.ipv4.ip_local_port_range), from
# which every outgoing connection on the master node takes its local port: gloo's mesh of a
# job beside this one, sacct, a database client. A master port inside it was taken so once
# ("EADDRINUSE"), failing a two-node job whose neighbour on the same host ran gloo.
# PORT_COUNT is prime to the 7 of master_port: with 12768 (= 7 x 1824) job ids 1824 apart
# shared a port, a clash on a busy cluster; now they repeat every 12767 ids.
PORT_BASE, PORT_COUNT = 20000, 12767  # ports 20000-32766


def master_port(job_id: str, restarts: int = 0) -> int:
    """A port every task of a job derives alike, in 20000-32766 (see PORT_BASE).

    It moves on each requeue so a restarted job does not collide with its
    previous run's socket (TIME_WAIT) on the same node.
    """
    digits = int(re.sub(r"\D", "", str(job_id)) or 0)
    return PORT_BASE + (digits * 7 + restarts) % PORT_COUNT


def export_distributed_env() -> dict[str, str]:
    """Set the variables in ``os.environ`` (overwriting stale ones) for this SLURM task;
    return them. Call it inside a job, before torch.distributed or DeepSpeed."""
    from submitit import JobEnvironment
    from submitit.helpers import TorchDistributedEnvironment

    job_env = JobEnvironment()
    # the raw SLURM_JOB_ID: unique per array element, unlike the "A_i" form
    os.environ["MASTER_PORT"] = str(master_port(job_env.raw_job_id, restart_count()))
    # CUDA_VISIBLE_DEVICES is left alone: distributed.setup selects the GPU by
    # LOCAL_RANK, which would be out of range if every task saw only one device.
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    os.environ["NODE_RANK"] = str(job_env.node)
    return {key: os.environ[key] for key in DIST_KEYS}


def preview(nodes: int, tasks_per_node: int) -> list[dict[str, str]]:
    """What :func:`export_distributed_env` sets in each task of a ``nodes`` x ``tasks_per_node``
    job (hosts named ``node1..nodeN``), by running it under each task's SLURM variables.

    For ``--dry-run``: the same code the jobs run, on an example node list.
    """
    saved = dict(os.environ)
    out = []
    try:
        for rank in range(nodes * tasks_per_node):
            for key in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", *DIST_KEYS):
                os.environ.pop(key, None)
            os.environ.update({
                "SLURM_JOB_ID": "4242", "SLURM_NTASKS": str(nodes * tasks_per_node),
                "SLURM_JOB_NUM_NODES": str(nodes),
                "SLURM_JOB_NODELIST": f"node[1-{nodes}]" if nodes > 1 else "node1",
                "SLURM_NODEID": str(rank // tasks_per_node), "SLURM_PROCID": str(rank),
                "SLURM_LOCALID": str(rank % tasks_per_node), "SLURM_RESTART_COUNT": "0",
                "SUBMITIT_EXECUTOR": "slurm"})
            env = export_distributed_env()
            env["MASTER_PORT"] = f"<{PORT_BASE}+(job_id*7+requeues)%{PORT_COUNT}>"  # the real job's
            out.append(env)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return out


def describe(nodes: int, tasks_per_node: int) -> str:
    """The dry run's comment block: each task's torch.distributed variables (see preview)."""
    lines = [f"# torch.distributed environment, set in each task at job start by "
             f"fcap.launchers.slurm_env (example hosts node1..node{nodes}):"]
    for env in preview(nodes, tasks_per_node):
        lines.append("#   " + " ".join(f"{k}={env[k]}" for k in DIST_KEYS))
    return "\n".join(lines)
