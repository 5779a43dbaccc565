"""Tiny frozen models *pretrained* on generated data: ``source: tiny-pretrained``.

The paper joins pretrained unimodal models with adapters; random frozen models
cannot show that. Each tiny model here is pretrained once, deterministically
from its recipe's seed, on data drawn from the shapes world's own generators
but never from the world's datasets:

- OPT (:mod:`.opt`): causal LM on caption-style English that holds no
  reference sentence of the world (quality: held-out perplexity);
- TimeSformer (:mod:`.timesformer`): supervised colour / shape / direction /
  background heads on generated clips, then frozen (quality: held-out probe
  accuracy per attribute);
- BLIP (:mod:`.blip`): image captioner on LAION-style still images, so it
  names colour, shape and background, never motion (quality: held-out
  attribute accuracy of its captions).

Each is saved in transformers format under
``<fcap cache>/models/tiny-pretrained-<kind>-<hash>`` -- the hash covers
:data:`VERSION`, the world's drawing version, the model's dims and its recipe -- with ``quality.json``
beside the weights, and loads through the same ``from_pretrained`` path as a
real checkpoint. Builds run single-threaded (same weights on every machine with
the same torch), show a progress bar on a terminal, and are serialised by a
file lock, so concurrent stages build once. A process that needs several
(:func:`prepare`: a captioner's LM and encoder) builds the longest first and
one that another process is building last, so two stages starting together
build side by side; :func:`build_all` builds the three in one process per core
that way. ``source: tiny`` stays the random models (unit tests).

    python -m fcap.models.pretrain_tiny        # build all three now; print their quality
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from fcap.models.pretrain_tiny.common import QUALITY, log, read_quality

VERSION = 1  # bump when a recipe changes what it trains: every cache key changes


def _key_version() -> str:
    """The cache key's version: :data:`VERSION` and the shapes world's drawing (the models
    are pretrained on drawn scenes; a new drawing must not find the old models)."""
    from fcap.data.shapes.render import DRAWING

    return f"pretrained-{VERSION}-drawing{DRAWING}"
# The recipe each kind is pretrained with (part of the cache key). Tests swap in short ones.
RECIPES: dict[str, Any] = {}

__all__ = ["QUALITY", "VERSION", "build_all", "built_dir", "kinds", "prepare", "pretrained_dir",
           "qualities", "read_quality", "spec_for"]


def kinds() -> dict[str, Any]:
    """``{kind: default dims}`` of the three pretrained tiny models."""
    from fcap.models.tiny import TinyOPT, TinyTimesformer
    from fcap.models.tiny_blip import TinyBlip

    return {"opt": TinyOPT(), "timesformer": TinyTimesformer(), "blip": TinyBlip()}


def spec_for(dims: Any) -> tuple[str, Any, Any]:
    """(kind, spec: dims + the kind's recipe in :data:`RECIPES`, build function) for ``dims``."""
    from fcap.models.pretrain_tiny import blip, opt, timesformer
    from fcap.models.tiny import TinyOPT, TinyTimesformer
    from fcap.models.tiny_blip import TinyBlip

    RECIPES.setdefault("opt", opt.OPTRecipe())
    RECIPES.setdefault("timesformer", timesformer.TimesformerRecipe())
    RECIPES.setdefault("blip", blip.BlipRecipe())
    if isinstance(dims, TinyOPT):
        return "opt", opt.PretrainedOPT(dims=dims, recipe=RECIPES["opt"]), opt.build
    if isinstance(dims, TinyTimesformer):
        return ("timesformer", timesformer.PretrainedTimesformer(
            dims=dims, recipe=RECIPES["timesformer"]), timesformer.build)
    if isinstance(dims, TinyBlip):
        return "blip", blip.PretrainedBlip(dims=dims, recipe=RECIPES["blip"]), blip.build
    raise TypeError(f"no tiny pretraining recipe for {type(dims).__name__}; known: TinyOPT, "
                    "TinyTimesformer, TinyBlip")


# what the default recipes took, single-threaded, on the 2-core VMs of bench/README.md
BUILD_TIME = {"opt": "under a minute on one core", "blip": "about a minute on one core",
              "timesformer": "1-4 minutes on one core"}
BUILD_ORDER = ("timesformer", "blip", "opt")  # the longest build first (BUILD_TIME)


def pretrained_dir(dims: Any, *, wait: bool = True) -> Path | None:
    """The cache folder of the pretrained tiny model with ``dims``; built (once) if missing.

    ``wait=False``: None at once when another process is building it.
    """
    from fcap.models.tiny_cache import tiny_dir

    kind, spec, build = spec_for(dims)

    def build_logged(out: Path, spec: Any) -> None:
        log.info("building the pretrained tiny %s once (cached in %s; %s)", kind, out.parent,
                 BUILD_TIME.get(kind, "minutes"))
        build(out, spec)
        log.info("pretrained tiny %s: %s", kind, read_quality(out))

    return tiny_dir(kind, spec, build_logged, version=_key_version(),
                    prefix="tiny-pretrained", wait=wait)


def prepare(all_dims: Sequence[Any]) -> list[Path]:
    """The cache folders of the pretrained tiny models ``all_dims`` (in that order).

    Missing ones are built longest first (:data:`BUILD_ORDER`); one that another
    process is building is waited for only after the others are built. Two
    stages starting together (one's encoder in progress, the other's LM not
    begun) thus build side by side instead of one waiting for the other.
    """
    order = sorted(range(len(all_dims)),
                   key=lambda i: BUILD_ORDER.index(spec_for(all_dims[i])[0]))
    folders = {i: pretrained_dir(all_dims[i], wait=False) for i in order}
    for i in order:
        if folders[i] is None:  # another process is building it
            folders[i] = pretrained_dir(all_dims[i])
    return [folders[i] for i in range(len(all_dims))]


def built_dir(dims: Any) -> Path | None:
    """The folder :func:`pretrained_dir` returns for ``dims`` if it is built already; never builds."""
    from fcap.models.tiny_cache import DONE, tiny_path

    kind, spec, _ = spec_for(dims)
    folder, _ = tiny_path(kind, spec, version=_key_version(), prefix="tiny-pretrained")
    return folder if (folder / DONE).exists() else None


def qualities() -> dict[str, dict | None]:
    """``{kind: quality.json}`` of the default pretrained tiny models built so far (None: not built).

    For reports: reads the cache, never builds.
    """
    out = {}
    for kind, dims in kinds().items():
        folder = built_dir(dims)
        out[kind] = None if folder is None else {**(read_quality(folder) or {}),
                                                 "path": str(folder)}
    return out


def build_all(workers: int | None = None) -> dict[str, dict]:
    """Build (or find) all three default pretrained tiny models; ``{kind: quality + path}``.

    The missing ones are built by ``workers`` processes side by side (default: one
    per CPU core this process may use, at most one per missing model), each
    running :func:`prepare` on all of them: the first takes the longest build,
    the next the longest one not taken. Every build is single-threaded, so the
    weights are those of builds one after another. A worker that fails leaves
    its model to this process, which builds it and raises what went wrong.
    """
    every = kinds()
    missing = [dims for dims in every.values() if built_dir(dims) is None]
    if workers is None:
        workers = min(len(missing), len(os.sched_getaffinity(0)))
    if workers > 1 and missing:
        _side_by_side(missing, workers)
    folders = prepare(list(every.values()))
    return {kind: {**(read_quality(folder) or {}), "path": str(folder)}
            for kind, folder in zip(every, folders)}


def _side_by_side(all_dims: list, workers: int) -> None:
    """Run :func:`prepare` on ``all_dims`` in ``workers`` forked processes; wait for them."""
    context = multiprocessing.get_context("fork")  # a test's short recipes go with it
    procs = [context.Process(target=_worker, args=(index, all_dims),
                             name=f"fcap tiny build {index}") for index in range(workers)]
    sys.stdout.flush()  # or a child would write this process's buffered output again
    sys.stderr.flush()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            log.warning("%s exited with code %s; what it left unbuilt is built here",
                        proc.name, proc.exitcode)


def _worker(index: int, all_dims: list) -> None:
    """A build process: one torch thread (no OpenMP team after a fork), its own bar line."""
    import torch

    from fcap.models.pretrain_tiny import common

    torch.set_num_threads(1)
    common.BAR_POSITION = index
    prepare(all_dims)
