"""Walking a stage's config: every value with its dotted key, and the data sources in it.

The data preflight (preflight.py) and the inputs a finished stage records
(inputs.py) both look for the data sources of a config at any depth (a mixture's
children) and resolve their ``root:`` as the readers do.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator

from fcap.config.schema import Component
from registry import DATA_SOURCES


def nodes(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every value in a config, a component's options and list items
    included (``model.lm.source``, ``data.children[0].source``)."""
    if key:
        yield key, value
    if isinstance(value, Component):
        value = value.cfg
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from nodes(getattr(value, f.name), f"{key}.{f.name}" if key else f.name)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from nodes(item, f"{key}[{i}]")


def data_sources(cfg: Any) -> Iterator[tuple[str, Component]]:
    """(dotted key, component) of every data source with a ``root:`` in a config."""
    for key, value in nodes(cfg):
        if (isinstance(value, Component) and value.registry is DATA_SOURCES
                and isinstance(getattr(value.cfg, "root", None), str)):
            yield key, value


def data_root(cfg: Any) -> str | None:
    """The config's ``datasets.root`` (None: unset, or a config without ``datasets:``)."""
    return getattr(getattr(cfg, "datasets", None), "root", None)
