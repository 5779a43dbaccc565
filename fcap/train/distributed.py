"""torch.distributed for one stage: from the launcher's environment, or 1 process.

A launcher (torchrun, SLURM via submitit, fcap's local launcher) exports RANK,
LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; without them the stage
runs as a 1-process group on a free local port. nccl on GPUs, gloo on CPU.
"""
from __future__ import annotations

import importlib
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist

ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    backend: str
    owned: bool  # this stage created the process group (and tears it down)
    env_added: tuple[str, ...] = ()  # variables setup() exported itself (teardown removes them)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _silence_cpu_shm_build() -> None:
    # NOTES-ENV: DeepSpeed's CPU accelerator JIT-compiles a shared-memory
    # allreduce with g++ at init (23-40 s, or a failure without a compiler).
    # gloo does the same job here. ``import deepspeed.comm.torch as m`` would
    # resolve to the torch package, hence importlib.
    module = importlib.import_module("deepspeed.comm.torch")
    module.build_shm_op = lambda *args, **kwargs: None


def setup() -> DistInfo:
    """Join (or create) the process group; idempotent within a process."""
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if torch.cuda.is_available() else "cpu")
    import deepspeed

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "gloo":
        _silence_cpu_shm_build()
    owned = False
    missing: list[str] = []
    if not dist.is_initialized():
        missing = [k for k in ENV_KEYS if k not in os.environ]
        if len(missing) == len(ENV_KEYS) or missing == ["LOCAL_RANK"]:
            os.environ.setdefault("RANK", "0")
            os.environ.setdefault("LOCAL_RANK", os.environ["RANK"])
            os.environ.setdefault("WORLD_SIZE", "1")
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ.setdefault("MASTER_PORT", str(free_port()))
        elif missing:
            raise RuntimeError("distributed environment is incomplete: missing "
                               f"{', '.join(missing)} (have {', '.join(k for k in ENV_KEYS if k not in missing)}); "
                               "set all of RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT or none")
        owned = True
    deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False, verbose=False)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    # A 1-process group made here picked its own port: the next stage in this process
    # (the local launcher runs stages back to back) must pick a fresh one, not reuse it.
    return DistInfo(rank=dist.get_rank(), local_rank=local_rank, world_size=dist.get_world_size(),
                    backend=backend, owned=owned, env_added=tuple(missing) if owned else ())


def teardown(info: DistInfo) -> None:
    """Destroy the group if this stage made it (NOTES-ENV: avoids aborts at exit)."""
    if info.owned and dist.is_initialized():
        import deepspeed.comm as ds_comm

        dist.barrier()
        ds_comm.destroy_process_group()
    for key in info.env_added:
        os.environ.pop(key, None)


def device(info: DistInfo) -> torch.device:
    return torch.device("cuda", info.local_rank) if info.backend == "nccl" else torch.device("cpu")


def all_reduce(values: list[float], *, op: str = "sum", info: DistInfo) -> list[float]:
    """Reduce a few Python numbers across ranks (float64; ``op``: sum or max)."""
    if info.world_size == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device(info))
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return t.tolist()


def barrier(info: DistInfo) -> None:
    if info.world_size > 1:
        dist.barrier()
