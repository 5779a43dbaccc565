"""Where frozen models come from: a hub id, a local directory, ``tiny`` or ``tiny-pretrained``.

``tiny`` builds a small random model deterministically from its dims and seed
into the fcap cache (:mod:`fcap.models.tiny_cache`, a folder named by a hash of
those dims) and hands that folder back, so tiny and real checkpoints load
through the same ``from_pretrained`` path. ``tiny-pretrained`` does the same
with a model of those dims *pretrained* on generated data
(:mod:`fcap.models.pretrain_tiny`: the LM on a caption corpus, the encoder on
labelled shapes clips, the BLIP on shapes images), keyed by the recipe's
version and options too. Also: fcap's one identity hash of weights
(:func:`weights_hash`: adapter manifests, feature caches, pseudolabel shard
manifests) and the quiet loading of frozen models.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from fcap.models.tiny_cache import tiny_dir

TINY = "tiny"
TINY_PRETRAINED = "tiny-pretrained"


def resolve_source(source: str, *, key: str, tiny_options: Any,
                   build_tiny: Callable[[Path, Any], None]) -> str:
    """A local directory or hub id for ``from_pretrained``.

    ``key`` names the config key (for errors); ``build_tiny(out_dir, tiny_options)``
    writes a tiny model when ``source == "tiny"``; ``"tiny-pretrained"`` builds one
    with the same dims pretrained (:mod:`fcap.models.pretrain_tiny`).
    """
    if source == TINY:
        with quiet_loading():  # save_pretrained's "Writing model shards" bar
            return str(tiny_dir(key, tiny_options, build_tiny))
    if source == TINY_PRETRAINED:
        from fcap.models.pretrain_tiny import pretrained_dir

        with quiet_loading():
            return str(pretrained_dir(tiny_options))
    if os.path.isdir(os.path.expanduser(source)):
        return os.path.expanduser(source)
    problem = missing_directory(source)
    if problem:
        raise FileNotFoundError(f"{key}: {problem}")
    return source  # a hub id; from_pretrained resolves it (offline: from the local HF cache)


def prepare(*configs: Any) -> None:
    """Build the ``tiny-pretrained`` models that the source configs ``configs`` name (those
    with ``source`` and ``tiny``) before any of them is loaded, in the order
    :func:`fcap.models.pretrain_tiny.prepare` picks: the longest build first, one that
    another process is building last. Other sources are left to loading."""
    dims = [cfg.tiny for cfg in configs
            if getattr(cfg, "source", None) == TINY_PRETRAINED and getattr(cfg, "tiny", None)]
    if dims:
        from fcap.models import pretrain_tiny

        with quiet_loading():
            pretrain_tiny.prepare(dims)


def is_hub_id(source: str) -> bool:
    """Whether ``from_pretrained`` reads ``source`` from the hub (or its local cache): not
    ``tiny``, not an existing folder, and not written as a path (:func:`missing_directory`)."""
    return (source not in (TINY, TINY_PRETRAINED) and not os.path.isdir(os.path.expanduser(source))
            and missing_directory(source) is None)


def missing_directory(source: str) -> str | None:
    """Why ``source`` cannot be loaded: it is written as a path (not a hub id "org/name",
    nor ``tiny``), or names a file, and names no directory; None otherwise. The data
    preflight asks this before anything is queued (fcap/experiment/preflight.py), loading
    asks it again."""
    path = os.path.expanduser(source)
    looks_local = source.startswith(("/", ".", "~")) or source.count("/") > 1 or os.path.isfile(path)
    if not looks_local or os.path.isdir(path):
        return None
    if os.path.isfile(path):
        return f"no such model directory {source!r} ({what_to_give(source)})"
    return (f"no such model directory {source!r} (give a hub id, an existing directory, "
            "'tiny' or 'tiny-pretrained')")


def num_layers(source: str, tiny: Any = None) -> int | None:
    """How many layers the model ``source`` has, read without loading weights: ``tiny``'s
    dims for ``tiny`` / ``tiny-pretrained``, else the ``config.json`` of a folder or of a
    hub id in the local Hugging Face cache (``num_hidden_layers``, as transformers maps
    it); None when not known before loading (a hub id not downloaded yet)."""
    if source in (TINY, TINY_PRETRAINED):
        return getattr(tiny, "num_layers", None)
    folder = os.path.expanduser(source)
    if not os.path.isdir(folder):
        if not is_hub_id(source):
            return None
        from fcap.models.hub import cached_folder

        try:
            folder = cached_folder(source)
        except ValueError:  # not a valid hub id: the hub check says so
            return None
        if folder is None:
            return None
    if not os.path.isfile(os.path.join(folder, "config.json")):
        return None
    from transformers import AutoConfig

    try:
        with quiet_loading():
            config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError):  # not a config transformers reads: loading says why
        return None
    count = getattr(config, "num_hidden_layers", None)
    return count if isinstance(count, int) else None


def what_to_give(source: str) -> str:
    """What a model ``source`` written as a path must name, said for what is there: a file
    is not a checkpoint folder (an original TimeSformer ``.pyth`` is converted first)."""
    if not os.path.isfile(os.path.expanduser(source)):
        return "a model checkpoint, as save_pretrained writes it; or give a hub id org/name"
    if source.endswith(".pyth"):  # PySlowFast's suffix: facebookresearch/TimeSformer's checkpoints
        return (f"a file: an original TimeSformer checkpoint is converted first, python -m "
                f"fcap.models.convert_timesformer {source} OUT_DIR, then give OUT_DIR")
    return ("a file: give the folder save_pretrained writes (config.json and the weights), "
            "or a hub id org/name")


_VOLATILE = {"transformers_version", "dtype", "torch_dtype", "architectures", "use_cache",
             "output_attentions", "output_hidden_states", "return_dict"}


def config_hash(config: Any) -> str:
    """sha256 of a transformers config's architecture fields (paths, versions dropped)."""
    data = {k: v for k, v in config.to_dict().items() if not k.startswith("_") and k not in _VOLATILE}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def weights_hash(module: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer: name, dtype, shape and bytes.

    fcap's one weights identity (64 hex digits). Hash before any cast: the
    same weights give the same hash on CPU and GPU.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def identity(family: str, source: str, model: Any) -> dict[str, str]:
    """What checkpoints and feature caches record about a frozen model."""
    return {"family": family, "source": source, "config_hash": config_hash(model.config),
            "weights_hash": weights_hash(model)}


class ModelSourceError(OSError):
    """A model ``source`` that ``from_pretrained`` cannot load (a data error, exit 3)."""


@contextmanager
def loading(key: str, source: str) -> Iterator[None]:
    """Load a frozen model quietly (:func:`quiet_loading`); an ``OSError`` of
    ``from_pretrained`` (no such hub model, no network, offline and not cached, a folder
    without ``config.json``) becomes a :class:`ModelSourceError` naming ``key``."""
    with quiet_loading():
        try:
            yield
        except ModelSourceError:
            raise
        except OSError as err:
            raise ModelSourceError(f"{key}: cannot load {source!r}: {err}") from err


# Third-party messages that say nothing about the run, dropped while fcap loads or builds a
# frozen model: logger name -> message substrings. transformers 5 without torchvision: the
# name `BlipImageProcessor` falls back to `BlipImageProcessorPil`, the class it loads anyway
# (fcap normalises frames itself and reads only the processor's mean and std).
HARMLESS = {
    "transformers.utils.import_utils": ("requires torchvision (not installed); falling back to",),
}


class _DropHarmless(logging.Filter):
    def __init__(self, needles: tuple[str, ...]) -> None:
        super().__init__()
        self.needles = needles

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in record.getMessage() for n in self.needles)


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Load or build frozen models without transformers' progress bars ("Loading weights",
    "Writing model shards": two per model per stage) and without the :data:`HARMLESS`
    messages. Every other warning passes; the hub's download bars stay (a real checkpoint
    takes minutes to fetch); the previous settings come back on exit.
    """
    import huggingface_hub.utils as hub
    from transformers.utils import logging as hf_logging

    bars, hub_bars = hf_logging.is_progress_bar_enabled(), not hub.are_progress_bars_disabled()
    hf_logging.disable_progress_bar()  # also turns the hub's off: back on just below
    if hub_bars:
        hub.enable_progress_bars()
    filters = [(logging.getLogger(name), _DropHarmless(needles))
               for name, needles in HARMLESS.items()]
    for logger, f in filters:
        logger.addFilter(f)
    try:
        yield
    finally:
        for logger, f in filters:
            logger.removeFilter(f)
        if bars:
            hf_logging.enable_progress_bar()
            if not hub_bars:
                hub.disable_progress_bars()
