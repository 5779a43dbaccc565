"""Exact resume: a restored loader yields exactly the batches the original would have."""
from __future__ import annotations

import os
import tarfile

import pytest

from data_layouts import loader_kwargs, write_tar
from fcap.config.schema import build_component
from fcap.data import DataEnv, DataError, build_loader
from registry import DATA_SOURCES


def fingerprint(batch):
    return batch["modality"], tuple(batch["ids"]), round(float(batch["pixel_values"].sum()), 3)


def take(loader, n):
    it = iter(loader)
    return [fingerprint(next(it)) for _ in range(n)]


def check_resume(make, first, then):
    original = make()
    take(original, first)
    state = original.state_dict()
    expected = take(original, then)
    restored = make()
    restored.load_state_dict(state)
    assert take(restored, then) == expected
    return expected


@pytest.mark.parametrize("num_workers", [0, 2])
def test_map_loader_resumes_exactly_across_an_epoch(shapes_roots, num_workers):
    source = {"name": "msrvtt", "root": shapes_roots["msrvtt"]}  # 24 videos x 2 captions

    def make():
        return build_loader(build_component(DATA_SOURCES, source), env=DataEnv(seed=7),
                            **loader_kwargs(batch_size=5, num_workers=num_workers))

    assert len(make()) == 9  # 48 items, batches of 5, last partial one dropped
    expected = check_resume(make, 7, 5)  # crosses into epoch 1
    assert {len(e[1]) for e in expected} == {5}
    # epochs are reshuffled, and every item is seen once per epoch
    epoch0 = take(make(), 9)
    assert len({i for e in epoch0 for i in e[1]}) == 45


def test_map_state_from_another_world_size_is_refused(shapes_roots):
    source = build_component(DATA_SOURCES, {"name": "msrvtt", "root": shapes_roots["msrvtt"]})
    one = build_loader(source, env=DataEnv(), **loader_kwargs())
    two = build_loader(source, env=DataEnv(rank=1, world_size=2), **loader_kwargs())
    with pytest.raises(DataError, match=r"cannot resume from this loader state: "
                                        r"world_size=1 \(this loader: 2\)"):
        two.load_state_dict(one.state_dict())


@pytest.fixture
def uneven_shards(tmp_path, shapes_roots):
    """The generated LAION images regrouped into 6 shards of uneven sizes."""
    members = []
    for shard in sorted((p for p in os.listdir(shapes_roots["laion"])
                         if p.endswith(".tar"))):
        with tarfile.open(f"{shapes_roots['laion']}/{shard}") as tar:
            members += [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]
    samples: dict[str, dict[str, bytes]] = {}
    for name, data in members:
        key, ext = name.split(".", 1)
        samples.setdefault(key, {})["." + ext] = data
    keys = sorted(samples)
    start = 0
    for n, size in enumerate([5, 23, 9, 30, 11, 18]):
        write_tar(tmp_path / f"{n:05d}.tar", [(k, samples[k]) for k in keys[start:start + size]])
        start += size
    return tmp_path


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 3 workers on 2 cores
@pytest.mark.parametrize("num_workers", [0, 2, 3])
def test_stream_loader_resumes_exactly_with_workers(uneven_shards, num_workers):
    source = {"name": "laion", "root": str(uneven_shards)}

    def make():
        return build_loader(build_component(DATA_SOURCES, source), env=DataEnv(seed=3),
                            **loader_kwargs(batch_size=4, num_workers=num_workers))

    # 96 samples; roles run out at different times; the epoch ends after ~22 batches
    for first in (3, 13):
        check_resume(make, first, 14)


def test_stream_epoch_reads_every_full_batch_once(uneven_shards):
    loader = build_loader(build_component(DATA_SOURCES, {"name": "laion",
                                                         "root": str(uneven_shards)}),
                          env=DataEnv(seed=3), **loader_kwargs(batch_size=4, num_workers=2))
    it = iter(loader)
    ids = []
    while True:
        batch = next(it)
        if loader.epoch > 0:  # the first batch of epoch 1
            break
        ids += batch["ids"]
    # two roles share the 6 shards; each drops its partial last batch (< 4 samples)
    assert len(ids) == len(set(ids))
    assert 96 - 2 * 3 <= len(ids) <= 96 and len(ids) % 4 == 0
