"""Command-line overrides of a shared block that a stage's own value hides.

A shared block (``train:``, ``optimizer:``, ...) is merged *under* every stage that
takes it, so a stage's own ``train: {steps: 4000}`` wins over the command line's
``train.steps=30``. That is the documented order, but an override that reaches no
stage at all changed nothing and is refused; one that some stages hide is applied
where it can be and the plan says where it was not, with the key that reaches them
(``stages.pretrain.train.steps=30``).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from fcap.config.errors import Problem
from fcap.experiment.spec import EXPERIMENT_KEYS
from registry import TASKS


class Shadowed:
    """Collects, over every variant, where each shared override reached and where not."""

    def __init__(self, cli: list[tuple[str, Any]]) -> None:
        self.leaves = [leaf for key, value in cli if _shared(key) for leaf in _leaves(key, value)]
        self.reached: dict[str, set[str]] = {k: set() for k in self.leaves}
        self.hidden: dict[str, dict[str, Any]] = {k: {} for k in self.leaves}  # key -> stage -> own

    def add(self, vdoc: dict) -> None:
        """Record one variant's document (the command line applied)."""
        for sname, block in (vdoc.get("stages") or {}).items():
            if not isinstance(block, dict) or block.get("task") not in TASKS:
                continue
            config = TASKS.get(block["task"]).config
            takes = {f.name for f in dataclasses.fields(config)} if config else set()
            for key in self.leaves:
                parts = key.split(".")
                if parts[0] not in takes:
                    continue
                found, own = _lookup(block, parts)
                if found:
                    self.hidden[key][sname] = own
                else:
                    self.reached[key].add(sname)

    def problems(self) -> list[Problem]:
        return [Problem("command line", key, (
            f"reaches no stage: {_stages(self.hidden[key])} set their own {key}, which wins "
            f"over a shared block; set it per stage ({_example(key, self.hidden[key])})"))
            for key in self.leaves if self.hidden[key] and not self.reached[key]]

    def notes(self) -> list[str]:
        return [(f"command line {key}: stage(s) {_stages(self.hidden[key])} keep their own "
                 f"value (a stage's value wins over a shared block; "
                 f"{_example(key, self.hidden[key])} changes it there)")
                for key in self.leaves if self.hidden[key] and self.reached[key]]


def _shared(key: str) -> bool:
    top = key.split(".", 1)[0].split("[", 1)[0]
    return top not in EXPERIMENT_KEYS


def _leaves(key: str, value: Any) -> list[str]:
    if isinstance(value, dict) and value and "name" not in value:
        return [leaf for k, v in value.items() for leaf in _leaves(f"{key}.{k}", v)]
    return [key]


def _lookup(block: dict, parts: list[str]) -> tuple[bool, Any]:
    node: Any = block
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _stages(own: dict[str, Any]) -> str:
    return ", ".join(f"{s} ({v!r})" for s, v in own.items())


def _example(key: str, own: dict[str, Any]) -> str:
    return f"stages.{next(iter(own))}.{key}=..."
