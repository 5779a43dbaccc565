"""Resumable loaders over tar shards (webdataset layout), split across ranks and workers.

Each epoch the shard list is permuted from (seed, epoch) (training only); rank
r takes every world_size-th shard, and of those, worker *role* k takes every
num_workers-th: no shard is read twice in an epoch. A role batches its own
samples, so the loader state is, per role, the number of batches consumed,
plus the role whose batch comes next. torch's DataLoader returns worker
outputs round-robin (skipping exhausted workers); a restored loader rotates
roles onto workers so that the next role is served first, and each role
skips the samples it had already batched (reading, not decoding, them).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import numpy as np
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from fcap.data.env import DataEnv
from fcap.data.errors import DataError
from fcap.data.items import Item, LoaderSpec, Modality, collate, load_item
from fcap.data.loader import BaseLoader, _check_state, dataloader_kwargs


class _RoleStream(IterableDataset):
    def __init__(self, shards: list[str], read_shard: Callable[[str], Iterable[Item]],
                 spec: LoaderSpec, modality: Modality, features: Any, roles: int,
                 rotation: int, done: list[int]) -> None:
        self.shards, self.read_shard, self.spec = shards, read_shard, spec
        self.modality, self.features = modality, features
        self.roles, self.rotation, self.done = roles, rotation, done

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        role = (worker + self.rotation) % self.roles
        bs = self.spec.batch_size
        to_skip = self.done[role] * bs
        buf: list[Item] = []
        for shard in self.shards[role::self.roles]:
            for item in self.read_shard(shard):
                if to_skip:
                    to_skip -= 1
                    continue
                buf.append(item)
                if len(buf) == bs:
                    yield self._batch(buf, role)
                    buf = []
        if buf and not self.spec.train:  # training keeps batch sizes equal
            yield self._batch(buf, role)

    def _batch(self, items: list[Item], role: int) -> dict:
        batch = collate([load_item(i, self.spec, self.features) for i in items], self.modality)
        batch["_role"] = role
        return batch


class StreamLoader(BaseLoader):
    """Batches streamed from ``shards`` by ``read_shard(shard) -> Iterable[Item]``."""

    def __init__(self, name: str, shards: list[str], read_shard: Callable[[str], Iterable[Item]],
                 *, modality: Modality, spec: LoaderSpec, env: DataEnv,
                 features: Any = None) -> None:
        super().__init__(name, modality, spec, env)
        if len(shards) < env.world_size:
            raise DataError(f"data source {name}: {len(shards)} shard(s) cannot feed "
                            f"{env.world_size} ranks without overlap; write more shards")
        self.shards = list(shards)
        self.read_shard = read_shard
        self.features = features
        self.roles = max(1, spec.num_workers)
        self.epoch = 0
        self.done = [0] * self.roles
        self.next_role = 0

    def rank_shards(self, epoch: int) -> list[str]:
        """Shards this rank reads in ``epoch``."""
        shards = self.shards
        if self.spec.train:
            perm = np.random.default_rng([self.env.seed, epoch]).permutation(len(shards))
            shards = [shards[i] for i in perm]
        return shards[self.env.rank::self.env.world_size]

    def role_shards(self, epoch: int) -> list[list[str]]:
        mine = self.rank_shards(epoch)
        return [mine[r::self.roles] for r in range(self.roles)]

    def batches(self, include_empty: bool = False) -> Iterator[dict]:
        while True:
            dataset = _RoleStream(self.rank_shards(self.epoch), self.read_shard, self.spec,
                                  self.modality, self.features, self.roles, self.next_role,
                                  list(self.done))
            loader = DataLoader(dataset, batch_size=None, **dataloader_kwargs(self.spec))
            for batch in loader:
                role = batch.pop("_role")
                self.done[role] += 1
                self.next_role = (role + 1) % self.roles
                self._account(batch)
                if batch["ids"] or include_empty:
                    yield batch
            self._end_pass()
            self.done, self.next_role = [0] * self.roles, 0
            if not self.spec.train:
                return
            self.epoch += 1

    def state_dict(self) -> dict:
        return {"kind": "stream", "source": self.name, "epoch": self.epoch,
                "done": list(self.done), "next_role": self.next_role, "roles": self.roles,
                "shards": len(self.shards), "world_size": self.env.world_size,
                "batch_size": self.spec.batch_size}

    def load_state_dict(self, state: dict) -> None:
        _check_state(self.name, state, kind="stream", roles=self.roles, shards=len(self.shards),
                     world_size=self.env.world_size, batch_size=self.spec.batch_size)
        self.epoch = int(state["epoch"])
        self.done = [int(x) for x in state["done"]]
        self.next_role = int(state["next_role"])

