"""Mixture: per-rank draws, sync ablation, child batch sizes, exact resume."""
from __future__ import annotations

import math
import os

import pytest

from data_layouts import loader_kwargs
from fcap.config.errors import ConfigError
from fcap.config.schema import build_component
from fcap.data import DataEnv, DataError, build_loader
from registry import DATA_SOURCES


def truth_labels(roots) -> str:
    """The shapes world's own clip captions (its HowTo100M layout has no pseudolabels)."""
    return os.path.join(os.path.dirname(roots["howto100m"]), "truth", "howto100m.jsonl")


def mixture(roots, p_laion=0.95, sync=False):
    return build_component(DATA_SOURCES, {
        "name": "mixture", "sync": sync,
        "children": [
            {"source": {"name": "laion", "root": roots["laion"]}, "p": p_laion, "batch_size": 8},
            {"source": {"name": "howto100m", "root": roots["howto100m"],
                        "pseudolabels": truth_labels(roots)}, "p": 1 - p_laion,
             "batch_size": 1},
        ]})


def make(roots, *, rank=0, world_size=1, p_laion=0.95, sync=False, num_workers=0):
    env = DataEnv(seed=11, rank=rank, world_size=world_size)
    return build_loader(mixture(roots, p_laion, sync), env=env,
                        **loader_kwargs(num_workers=num_workers))


def test_image_fraction_within_binomial_bounds(shapes_roots):
    loader = make(shapes_roots)
    n, p = 2000, 0.95
    images = sum(loader.draw() == 0 for _ in range(n))
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(images - n * p) < 4 * sigma  # 1900 +- 39


def test_ranks_draw_independently_unless_synced(shapes_roots):
    def draws(rank, sync):
        loader = make(shapes_roots, rank=rank, world_size=2, p_laion=0.5, sync=sync)
        return [loader.draw() for _ in range(200)]

    assert draws(0, False) != draws(1, False)
    assert draws(0, True) == draws(1, True)
    assert draws(0, False) == draws(0, False)  # and each is reproducible


def test_every_batch_is_one_modality_with_its_childs_batch_size(shapes_roots):
    loader = make(shapes_roots, p_laion=0.5)
    expected = [loader.draw() for _ in range(8)]
    fresh = make(shapes_roots, p_laion=0.5)
    it = iter(fresh)
    for child in expected:
        batch = next(it)
        if child == 0:
            assert batch["modality"] == "image"
            assert batch["pixel_values"].shape == (8, 1, 3, 32, 32)
        else:
            assert batch["modality"] == "video"
            assert batch["pixel_values"].shape == (1, 4, 3, 32, 32)
    assert set(expected) == {0, 1}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_restored_mixture_continues_with_the_same_batches(shapes_roots, num_workers):
    def fp(batch):
        return batch["modality"], tuple(batch["ids"]), round(float(batch["pixel_values"].sum()), 3)

    original = make(shapes_roots, p_laion=0.5, num_workers=num_workers)
    it = iter(original)
    for _ in range(5):
        next(it)
    state = original.state_dict()
    expected = [fp(next(it)) for _ in range(6)]
    restored = make(shapes_roots, p_laion=0.5, num_workers=num_workers)
    restored.load_state_dict(state)
    it = iter(restored)
    assert [fp(next(it)) for _ in range(6)] == expected
    assert {e[0] for e in expected} == {"image", "video"}


def test_sync_state_cannot_restore_an_independent_mixture(shapes_roots):
    with pytest.raises(DataError, match=r"sync=True \(this loader: False\)"):
        make(shapes_roots).load_state_dict(make(shapes_roots, sync=True).state_dict())


def test_mixture_is_for_training_only(shapes_roots):
    with pytest.raises(DataError, match="'mixture' is for training; evaluate on one source"):
        build_loader(mixture(shapes_roots), env=DataEnv(), **loader_kwargs(train=False))


@pytest.mark.parametrize("block, problem", [
    ({"name": "mixture"}, "children: a mixture needs at least one child"),
    ({"name": "mixture", "children": [{"source": {"name": "laoin"}, "p": 1.0}]},
     "no data source 'laoin' in registry 'data source'; did you mean 'laion'?"),
    ({"name": "mixture", "children": [{"source": {"name": "laion"}, "p": 0}]},
     "p must be > 0, got 0.0"),
])
def test_bad_mixture_configs(block, problem):
    with pytest.raises(ConfigError) as info:
        build_component(DATA_SOURCES, block)
    assert problem in str(info.value)


def test_a_mixture_counts_the_clips_its_children_kept(shapes_roots):
    env = DataEnv(seed=11)
    plain = build_loader(mixture(shapes_roots, p_laion=0.5), env=env, **loader_kwargs())
    assert plain.clip_memory() is None
    loader = build_loader(mixture(shapes_roots, p_laion=0.5), env=DataEnv(seed=11),
                          **loader_kwargs(clip_memory_mb=16))
    videos = 0
    for batch, _ in zip(loader, range(40)):
        videos += len(batch["ids"]) if batch["modality"] == "video" else 0
    counts = loader.clip_memory()  # the howto100m child's; laion is a stream of images
    assert counts["decoded"] + counts["reused"] == videos > 0
    assert counts["reused"] > 0
