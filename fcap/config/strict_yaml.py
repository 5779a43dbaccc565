"""YAML without a silent last-wins: every repeated key of a mapping is a Problem.

PyYAML's SafeLoader keeps the last of two equal keys and says nothing, so a
``steps: 30`` forty lines below ``steps: 20`` quietly decides the run. fcap
reads every YAML it is given (experiments, their bases, profiles, cluster
profiles, command-line override values) through :func:`load`.
"""
from __future__ import annotations

from typing import Any

import yaml

from fcap.config.errors import Problem

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyLoader(yaml.SafeLoader):
    """A SafeLoader that records each repeated mapping key in ``problems``.

    Keys are compared as Python would store them (``1``, ``1.0`` and ``true``
    collide in a dict, so they collide here too). ``<<: *anchor`` merges are
    overrides by design and are not checked. The document still loads
    (last wins) so the caller can report the file's other problems with these.
    """

    def __init__(self, stream: str, *, source: str) -> None:
        super().__init__(stream)
        self.name = source  # syntax errors say 'in "<file>", line N', not "<unicode string>"
        self.source = source
        self.problems: list[Problem] = []

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        self._check(node, "", set())
        return self.construct_document(node)

    def _check(self, node: yaml.Node, path: str, seen: set[int]) -> None:
        if id(node) in seen:  # an alias: checked where its anchor is
            return
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._check(item, f"{path}[{i}]", seen)
        if not isinstance(node, yaml.MappingNode):
            return
        first: dict[Any, tuple[int, str]] = {}  # key -> (line, as written)
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                self._check(value_node, path, seen)  # a merge source or a complex key
                continue
            key, text = self.construct_object(key_node), key_node.value
            dotted = f"{path}.{text}" if path else text
            line = key_node.start_mark.line + 1
            if key in first:
                was_line, was_text = first[key]
                was = f" as '{was_text}'" if was_text != text else ""
                self.problems.append(Problem(self.source, dotted, (
                    f"line {line}: duplicate key '{text}' (first set on line {was_line}{was}); "
                    f"YAML would silently keep the last one: remove or rename one")))
            else:
                first[key] = (line, text)
            self._check(value_node, dotted, seen)


def load(text: str, *, source: str) -> tuple[Any, list[Problem]]:
    """``yaml.safe_load(text)`` and the duplicate-key problems of ``source`` (a file or
    "command line"); a syntax error raises ``yaml.YAMLError`` as safe_load does."""
    loader = DuplicateKeyLoader(text, source=source)
    try:
        return loader.get_single_data(), loader.problems
    finally:
        loader.dispose()
