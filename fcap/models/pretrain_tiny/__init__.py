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
file lock, so concurrent stages build once. ``source: tiny`` stays the random
models (unit tests).

    python -m fcap.models.pretrain_tiny        # build all three now; print their quality
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fcap.models.pretrain_tiny.common import QUALITY, log, read_quality

VERSION = 1  # bump when a recipe changes what it trains: every cache key changes


def _key_version() -> str:
    """The cache key's version: :data:`VERSION` and the shapes world's drawing (the models
    are pretrained on drawn scenes; a new drawing must not find the old models)."""
    from fcap.data.shapes.render import DRAWING

    return f"pretrained-{VERSION}-drawing{DRAWING}"
# The recipe each kind is pretrained with (part of the cache key). Tests swap in short ones.
RECIPES: dict[str, Any] = {}

__all__ = ["QUALITY", "VERSION", "build_all", "built_dir", "kinds", "pretrained_dir", "qualities",
           "read_quality", "spec_for"]


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


def pretrained_dir(dims: Any) -> Path:
    """The cache folder of the pretrained tiny model with ``dims``; built (once) if missing."""
    from fcap.models.tiny_cache import tiny_dir

    kind, spec, build = spec_for(dims)

    def build_logged(out: Path, spec: Any) -> None:
        log.info("building the pretrained tiny %s once (cached in %s; %s)", kind, out.parent,
                 BUILD_TIME.get(kind, "minutes"))
        build(out, spec)
        log.info("pretrained tiny %s: %s", kind, read_quality(out))

    return tiny_dir(kind, spec, build_logged, version=_key_version(),
                    prefix="tiny-pretrained")


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


def build_all() -> dict[str, dict]:
    """Build (or find) all three default pretrained tiny models; ``{kind: quality + path}``."""
    return {kind: {**(read_quality(folder) or {}), "path": str(folder)}
            for kind, folder in ((k, pretrained_dir(d)) for k, d in kinds().items())}
