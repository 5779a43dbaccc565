"""torch.distributed's environment for one task of a SLURM job, from submitit's JobEnvironment.

Every task exports RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, NODE_RANK,
MASTER_ADDR and MASTER_PORT before anything initialises torch.distributed or
DeepSpeed (without MASTER_ADDR, ``deepspeed.init_distributed`` falls back to
MPI discovery or waits for a rendezvous that never comes).
"""
from __future__ import annotations

import os
import re
from typing import Any

DIST_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK",
             "MASTER_ADDR", "MASTER_PORT")


def restart_count() -> int:
    """How many times SLURM has requeued this job (0 on the first run)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)


def master_port(job_id: str, restarts: int = 0) -> int:
    """A port every task of a job derives alike, in 20000-59999.

    It moves on each requeue so a restarted job does not collide with its
    previous run's socket (TIME_WAIT) on the same node.
    """
    digits = int(re.sub(r"\D", "", str(job_id)) or 0)
    return 20000 + (digits * 7 + restarts) % 40000


def distributed_env(job_env: Any = None) -> dict[str, str]:
    """The variables for this task (``job_env``: a ``submitit.JobEnvironment``)."""
    if job_env is None:
        import submitit

        job_env = submitit.JobEnvironment()
    per_node = max(1, job_env.num_tasks // max(1, job_env.num_nodes))
    return {
        "RANK": str(job_env.global_rank),
        "LOCAL_RANK": str(job_env.local_rank),
        "WORLD_SIZE": str(job_env.num_tasks),
        "LOCAL_WORLD_SIZE": str(per_node),
        "NODE_RANK": str(job_env.node),
        "MASTER_ADDR": job_env.hostnames[0],
        # the raw SLURM_JOB_ID: unique per array element, unlike the "A_i" form
        "MASTER_PORT": str(master_port(job_env.raw_job_id, restart_count())),
    }


def export_distributed_env(job_env: Any = None) -> dict[str, str]:
    """Set the variables in ``os.environ`` (overwriting stale ones); return them."""
    values = distributed_env(job_env)
    os.environ.update(values)
    return values
