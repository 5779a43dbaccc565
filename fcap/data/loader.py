"""Resumable loaders over a list of items (map-style sources).

Order is a pure function of (seed, epoch, rank, world_size): training shuffles
with a permutation drawn from (seed, epoch), drops the tail that does not
divide evenly across ranks and gives rank r every world_size-th index. The
state is (epoch, batches consumed in the epoch); a restored loader rebuilds the
epoch's batches and starts its sampler at that offset, so it yields exactly the
batches the original would have, with or without DataLoader workers.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fcap.data.env import DataEnv
from fcap.data.errors import DataError
from fcap.data.items import Item, LoaderSpec, Modality, collate, load_item
from fcap.data.memory import ClipMemory


def worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)  # decode parallelism comes from workers, not threads


def dataloader_kwargs(spec: LoaderSpec) -> dict[str, Any]:
    pin = torch.cuda.is_available() if spec.pin_memory is None else spec.pin_memory
    kwargs: dict[str, Any] = {"num_workers": spec.num_workers, "pin_memory": pin}
    if spec.num_workers > 0:
        kwargs.update(prefetch_factor=spec.prefetch_factor, worker_init_fn=worker_init)
    return kwargs


class BaseLoader:
    """What every loader shares: skip accounting and the public iteration API.

    Iterating yields batches (docs/CONTRACTS.md). Training loaders never end
    (epochs follow each other); evaluation loaders make one pass per ``iter``.
    """

    def __init__(self, name: str, modality: Modality, spec: LoaderSpec, env: DataEnv) -> None:
        self.name = name
        self.modality = modality
        self.spec = spec
        self.env = env

    def _account(self, batch: dict) -> None:
        self.env.skips.record(self.name, attempted=len(batch["ids"]) + len(batch["skipped"]),
                              skipped=batch["skipped"])

    def _end_pass(self) -> None:
        self.env.skips.check(self.name, pass_ended=True)

    def batches(self, include_empty: bool = False) -> Iterator[dict]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[dict]:
        return self.batches(include_empty=False)

    def clip_memory(self) -> dict | None:
        """``{decoded, reused}``: clips decoded and clips handed back from memory so far
        (this rank, its workers included), when the loader keeps them (``clip_memory_mb``;
        fcap/data/memory.py); else None."""
        return None

    def skip_stats(self) -> dict:
        """This source's ``{attempted, skipped, fraction, reasons}`` so far."""
        return self.env.skips.summary().get(self.name, {"attempted": 0, "skipped": 0,
                                                        "fraction": 0.0, "reasons": {}})


class _ItemDataset(Dataset):
    def __init__(self, items: list[Item], spec: LoaderSpec, features: Any,
                 memory: ClipMemory | None) -> None:
        self.items, self.spec, self.features, self.memory = items, spec, features, memory

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return load_item(self.items[index], self.spec, self.features, self.memory)


class MapLoader(BaseLoader):
    """Batches over ``items`` for one rank; ``state_dict`` = (epoch, batches consumed)."""

    def __init__(self, name: str, items: list[Item], *, modality: Modality, spec: LoaderSpec,
                 env: DataEnv, features: Any = None) -> None:
        super().__init__(name, modality, spec, env)
        if not items:
            raise DataError(f"data source {name}: no items for split {spec.split!r}")
        if spec.train and len(items) < env.world_size * spec.batch_size:
            raise DataError(f"data source {name}: {len(items)} items cannot fill one batch of "
                            f"{spec.batch_size} on each of {env.world_size} ranks")
        self.items = items
        self.features = features
        # kept across epochs in this process; a DataLoader worker gets its own copy
        self.memory = ClipMemory(spec.clip_memory_mb) if spec.clip_memory_mb else None
        self.memory_counts = {"decoded": 0, "reused": 0}  # from the batches (workers too)
        self.epoch = 0
        self.batch_in_epoch = 0

    def order(self, epoch: int) -> list[int]:
        """Item indices this rank reads in ``epoch``."""
        n, world, rank = len(self.items), self.env.world_size, self.env.rank
        if not self.spec.train:
            return list(range(n))[rank::world]
        perm = np.random.default_rng([self.env.seed, epoch]).permutation(n)
        return perm[: n - n % world][rank::world].tolist()

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order, bs = self.order(epoch), self.spec.batch_size
        batches = [order[i:i + bs] for i in range(0, len(order), bs)]
        if self.spec.train and batches and len(batches[-1]) < bs:
            batches.pop()  # equal batch sizes in training
        return batches

    def __len__(self) -> int:
        return len(self.epoch_batches(self.epoch))

    def batches(self, include_empty: bool = False) -> Iterator[dict]:
        while True:
            todo = self.epoch_batches(self.epoch)[self.batch_in_epoch:]
            dataset = _ItemDataset(self.items, self.spec, self.features, self.memory)
            loader = DataLoader(dataset, batch_sampler=todo,
                                collate_fn=partial(collate, modality=self.modality),
                                **dataloader_kwargs(self.spec))
            for batch in loader:
                self.batch_in_epoch += 1
                self._account(batch)
                for key in self.memory_counts:
                    self.memory_counts[key] += batch.get(f"clips_{key}", 0)
                if batch["ids"] or include_empty:
                    yield batch
            self._end_pass()
            self.batch_in_epoch = 0
            if not self.spec.train:
                return  # one pass; iterating again starts it again
            self.epoch += 1

    def clip_memory(self) -> dict | None:
        return None if self.memory is None else dict(self.memory_counts)

    def state_dict(self) -> dict:
        return {"kind": "map", "source": self.name, "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch, "items": len(self.items),
                "world_size": self.env.world_size, "batch_size": self.spec.batch_size}

    def load_state_dict(self, state: dict) -> None:
        _check_state(self.name, state, kind="map", items=len(self.items),
                     world_size=self.env.world_size, batch_size=self.spec.batch_size)
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])


def _check_state(name: str, state: dict, **expected: Any) -> None:
    """A state from a differently-shaped loader would resume at the wrong batch: refuse it."""
    diffs = [f"{k}={state.get(k)!r} (this loader: {v!r})" for k, v in expected.items()
             if state.get(k) != v]
    if diffs:
        raise DataError(f"data source {name}: cannot resume from this loader state: "
                        + ", ".join(diffs))
