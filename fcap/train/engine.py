"""Build the DeepSpeed engine around a model whose only trainable parts are adapters."""
from __future__ import annotations

from typing import Iterable

import torch

from fcap.config import Component
from fcap.train.config import TrainConfig
from fcap.train.distributed import DistInfo


def deepspeed_config(cfg: TrainConfig, *, world_size: int) -> dict:
    """The DeepSpeed JSON for ``cfg`` (optimizer and scheduler are passed as objects)."""
    ds = {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "train_batch_size": cfg.batch_size * cfg.grad_accum * world_size,
        "gradient_clipping": cfg.clip_grad,
        "zero_optimization": {"stage": cfg.zero_stage},
        # Our optimizers are plain torch ones: DeepSpeed's list of "tested"
        # optimizers only covers its own fused kernels.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    if cfg.precision == "bf16":
        # Overflow checks make a non-finite gradient skip the update (bad steps).
        ds["bf16"] = {"enabled": True, "check_grad_overflow": True}
    elif cfg.precision == "fp16":
        ds["fp16"] = {"enabled": True, "loss_scale": 0, "initial_scale_power": 16}
    return ds


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters that reach the optimizer: the model's own list if it has one."""
    params = model.trainable_parameters() if hasattr(model, "trainable_parameters") else \
        [p for p in model.parameters() if p.requires_grad]
    params = list(params)
    if not params:
        raise ValueError("the model has no trainable parameters (adapters missing or all frozen)")
    ids = {id(p) for p in params}
    for p in model.parameters():
        # Only adapters train (Sec. 4): anything else with requires_grad would
        # get gradients but no updates, silently; freeze it explicitly.
        if id(p) not in ids:
            p.requires_grad_(False)
    return params


def build_engine(model: torch.nn.Module, *, cfg: TrainConfig, optimizer: Component,
                 scheduler: Component, info: DistInfo, params: Iterable[torch.nn.Parameter] | None = None):
    """Returns the DeepSpeed engine; ``engine.optimizer`` holds only adapter parameters."""
    import deepspeed

    params = list(params) if params is not None else trainable(model)
    opt = optimizer.build(params)
    sched = scheduler.build(opt, total_steps=cfg.total_steps)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=sched,
                                           config=deepspeed_config(cfg, world_size=info.world_size))
    return engine


def optimizer_state_bytes(engine) -> int:
    """Bytes of optimizer state this rank holds: fp32 master partitions + moments."""
    opt = engine.optimizer
    inner = getattr(opt, "optimizer", opt)
    seen: set[int] = set()
    total = 0

    def add(t) -> None:
        nonlocal total
        if torch.is_tensor(t) and id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()

    for state in inner.state.values():
        for v in state.values():
            add(v)
    for group in getattr(opt, "single_partition_of_fp32_groups", []):
        add(group)
    return total
