"""Variants and grids: named override sets, and cartesian products of values.

A grid variant is named from its values, ``lr=0.001,gate=vector``: labels and
values keep to the name characters of :data:`fcap.experiment.spec.NAME_CHARS`;
any other run of characters becomes '_' followed by a short hash of the value
(``prompt=a_photo-3f2a1c``), so the name stays shell-safe and distinct values
stay distinct. '=' and ',' appear only in names composed this way.
"""
from __future__ import annotations

import hashlib
import itertools
import re
from typing import Any

import yaml

from fcap.config.errors import Problem
from fcap.config.loader import Origins
from fcap.experiment.spec import name_problem


def expand(doc: dict, origins: Origins, problems: list[Problem]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """[(variant name, [(dotted key, value), ...]), ...] for ``variants:`` x ``grid:`` x ``seeds:``.

    Without either, one variant named ``doc['variant']`` or ``default``.
    """
    named = _named(doc.get("variants"), origins, problems)
    grid = _grid(doc.get("grid"), origins, problems)
    seeds = _seeds(doc, origins, problems)
    if named is None and grid is None and seeds is None:
        name = doc.get("variant") or "default"
        bad = name_problem(name, generated=True)  # a resolved config.yaml may hold a grid name
        if bad:
            problems.append(Problem(origins("variant"), "variant", f"a variant name {bad}"))
        return [(name, [])]
    named = [(None, [])] if named is None else named  # [] when every name was refused
    grid = [(None, [])] if grid is None else grid
    seeds = [(None, [])] if seeds is None else seeds
    out = []
    for (vname, vset), (gname, gset), (sname, sset) in itertools.product(named, grid, seeds):
        name = ",".join(n for n in (vname, gname, sname) if n)
        bad = name_problem(name, generated=True)
        if bad:
            problems.append(Problem(origins("grid"), "grid", f"the variant name {bad}"))
            continue
        out.append((name, [*vset, *gset, *sset]))
    return out


def _seeds(doc: dict, origins: Origins, problems: list[Problem]):
    """``seeds: N``: every variant N times, with seeds seed .. seed+N-1 (named ``seed=K``)."""
    n = doc.get("seeds")
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        problems.append(Problem(origins("seeds"), "seeds", f"expected an int >= 1 (repeat every "
                                                         f"variant with that many seeds), got {n!r}"))
        return None
    if isinstance(doc.get("grid"), dict) and "seed" in doc["grid"]:
        problems.append(Problem(origins("seeds"), "seeds", "set either 'seeds: N' or a grid over "
                                                         "'seed', not both"))
        return None
    base = doc.get("seed", 0) if isinstance(doc.get("seed", 0), int) else 0
    return [(f"seed={base + k}", [("seed", base + k)]) for k in range(n)]


def seed_group(variant: str) -> str:
    """The variant a repeated seed belongs to: 'asr,seed=2' -> 'asr', 'seed=1' -> 'default'."""
    parts = [p for p in variant.split(",") if not p.startswith("seed=")]
    return ",".join(parts) or "default"


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
        bad = name_problem(name)
        if bad:
            problems.append(Problem(origins(key), key, f"a variant name {bad}"))
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
        name = ",".join(f"{_safe(labels[k])}={_safe(_fmt(v))}" for k, v in zip(keys, values))
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
    return yaml.safe_dump(value, default_flow_style=True).strip()


def _safe(text: str) -> str:
    """``text`` with each run of characters outside the name set made '_', plus a hash
    of ``text`` when anything changed: '/data/x y' -> '_data_x_y-1b2c3d'."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
    if safe == text:
        return text
    return f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"
