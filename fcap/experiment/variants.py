"""Variants and grids: named override sets, and cartesian products of values."""
from __future__ import annotations

import itertools
from typing import Any

import yaml

from fcap.config.errors import Problem
from fcap.config.loader import Origins


def expand(doc: dict, origins: Origins, problems: list[Problem]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """[(variant name, [(dotted key, value), ...]), ...] for ``variants:`` x ``grid:``.

    Without either, one variant named ``doc['variant']`` or ``default``.
    """
    named = _named(doc.get("variants"), origins, problems)
    grid = _grid(doc.get("grid"), origins, problems)
    if named is None and grid is None:
        return [(doc.get("variant") or "default", [])]
    named = named or [(None, [])]
    grid = grid or [(None, [])]
    out = []
    for (vname, vset), (gname, gset) in itertools.product(named, grid):
        name = ",".join(n for n in (vname, gname) if n)
        out.append((name, [*vset, *gset]))
    return out


def _named(block: Any, origins: Origins, problems: list[Problem]):
    if block is None:
        return None
    if not isinstance(block, dict) or not block:
        problems.append(Problem(origins("variants"), "variants",
                                "expected a non-empty mapping: variant name -> {dotted.key: value}"))
        return None
    out = []
    for name, overrides in block.items():
        key = f"variants.{name}"
        if not isinstance(name, str) or not name or "/" in name or "," in name:
            problems.append(Problem(origins(key), key, "a variant name must be a non-empty string "
                                                       "without '/' or ','"))
            continue
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, dict):
            problems.append(Problem(origins(key), key, f"expected a mapping of dotted.key: value, "
                                                       f"got {overrides!r}"))
            continue
        out.append((name, [(str(k), v) for k, v in overrides.items()]))
    return out


def _grid(block: Any, origins: Origins, problems: list[Problem]):
    if block is None:
        return None
    if not isinstance(block, dict) or not block:
        problems.append(Problem(origins("grid"), "grid",
                                "expected a non-empty mapping: dotted.key -> [values]"))
        return None
    keys = [str(k) for k in block]
    for k in keys:
        if not isinstance(block[k], list) or not block[k]:
            problems.append(Problem(origins(f"grid.{k}"), f"grid.{k}",
                                    f"expected a non-empty list of values, got {block[k]!r}"))
            return None
    labels = _labels(keys)
    out = []
    for values in itertools.product(*(block[k] for k in keys)):
        name = ",".join(f"{labels[k]}={_fmt(v)}" for k, v in zip(keys, values))
        out.append((name, list(zip(keys, values))))
    return out


def _labels(keys: list[str]) -> dict[str, str]:
    """Shortest dotted suffix of each key that is unique among the grid's keys."""
    out = {}
    for k in keys:
        parts = k.split(".")
        for n in range(1, len(parts) + 1):
            label = ".".join(parts[-n:])
            if sum(1 for other in keys if other == label or other.endswith("." + label)) == 1:
                out[k] = label
                break
        else:
            out[k] = k
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return str(value)
    return yaml.safe_dump(value, default_flow_style=True).strip().replace("/", "_")
