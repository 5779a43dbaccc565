"""Where frozen models come from: a hub id, a local directory, or ``tiny``.

``tiny`` builds a small random model deterministically from its dims and seed,
saves it in the real transformers format under ``<fcap cache>/models``
(``$FCAP_CACHE``, default ``~/.cache/fcap``) in a folder named by a hash of those dims, and hands
that folder back, so tiny and real checkpoints load through the same
``from_pretrained`` path. Also: identity hashes for checkpoints and caches.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from fcap.cache import cache_dir
from fcap.io import claim_dir, remove_owned

TINY = "tiny"
_FORMAT = 1  # bump when a tiny builder changes what it writes


def cache_root() -> Path:
    """Where tiny models are saved: ``<fcap cache>/models`` (:mod:`fcap.cache`)."""
    return cache_dir("models")


def resolve_source(source: str, *, key: str, tiny_options: Any,
                   build_tiny: Callable[[Path, Any], None]) -> str:
    """A local directory or hub id for ``from_pretrained``.

    ``key`` names the config key (for errors); ``build_tiny(out_dir, tiny_options)``
    writes a tiny model when ``source == "tiny"``.
    """
    if source == TINY:
        return str(tiny_dir(key, tiny_options, build_tiny))
    if os.path.isdir(source):
        return source
    if source.startswith(("/", ".", "~")) or source.count("/") > 1:  # hub ids are "org/name"
        raise FileNotFoundError(f"{key}: no such model directory {source!r} "
                                "(give a hub id, an existing directory, or 'tiny')")
    return source  # a hub id; from_pretrained resolves it (offline: from the local HF cache)


def tiny_dir(kind: str, options: Any, build: Callable[[Path, Any], None]) -> Path:
    """Build (once) and return the cache folder of a tiny model."""
    params = {"kind": kind, "format": _FORMAT, **dataclasses.asdict(options)}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    root = cache_root()
    out = root / f"tiny-{kind.replace('.', '-')}-{digest}"
    if (out / "fcap-tiny.json").exists():
        return out
    root.mkdir(parents=True, exist_ok=True)
    tmp = claim_dir(tempfile.mkdtemp(dir=root, prefix=".building-"), kind="tiny model")
    try:
        build(tmp, options)
        (tmp / "fcap-tiny.json").write_text(json.dumps(params, indent=1, sort_keys=True))
        try:
            os.replace(tmp, out)  # atomic; loses the race harmlessly if another process won
        except OSError:
            if not (out / "fcap-tiny.json").exists():
                raise
    finally:
        remove_owned(tmp)  # gone after a successful rename; marked by claim_dir above
    return out


_VOLATILE = {"transformers_version", "dtype", "torch_dtype", "architectures", "use_cache",
             "output_attentions", "output_hidden_states", "return_dict"}


def config_hash(config: Any) -> str:
    """sha256 of a transformers config's architecture fields (paths, versions dropped)."""
    data = {k: v for k, v in config.to_dict().items() if not k.startswith("_") and k not in _VOLATILE}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def weights_hash(module: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer: name, dtype, shape and bytes."""
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
