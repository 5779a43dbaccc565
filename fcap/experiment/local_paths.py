"""Relative local paths among a stage's options, made absolute when the plan is built.

A model checkpoint folder given relative to the working folder
(``model.visual.source=./ckpt``, ``stages.label.captioner.source=blip_copy``) or adapters
trained elsewhere (``adapters=old/adapters``) would otherwise be read relative to wherever
the stage runs: a rerun of its config.yaml from another folder would read another folder
under the same config hash. Like ``datasets.root`` and ``output_root``, they are made
absolute here (``~`` expanded), so config.yaml records, and the hash names, the folder
read. Hub ids (``facebook/opt-125m``, no such folder here) and ``tiny`` /
``tiny-pretrained`` stay as given; so do data sources' ``root:``, which are relative to
``datasets.root``.
"""
from __future__ import annotations

import os
from typing import Any

from fcap.config import input_paths
from fcap.config.schema import Component
from fcap.experiment.walk import nodes
from registry import MODELS


def made_absolute(cfg: Any) -> dict[str, str]:
    """``{dotted key: absolute path}`` for each relative local path in the config instance
    ``cfg``: a model's ``source`` (MODELS components) that is not a hub id, and every
    :func:`fcap.config.input_path` option. {} when there is none."""
    from fcap.models.sources import TINY, TINY_PRETRAINED, is_hub_id  # imports torch: not for --help

    given: dict[str, str] = dict(input_paths(cfg))
    for key, value in nodes(cfg):
        if not (isinstance(value, Component) and value.registry is MODELS):
            continue
        source = getattr(value.cfg, "source", None)
        if isinstance(source, str) and source not in (TINY, TINY_PRETRAINED) \
                and not is_hub_id(source):
            given[f"{key}.source"] = source
    return {key: os.path.abspath(os.path.expanduser(path)) for key, path in given.items()
            if path and not os.path.isabs(path)}
