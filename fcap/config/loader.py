"""Read YAML the one way fcap does: safe_load, ``base:`` chains, dotted overrides.

A key written twice in one mapping is an error, never a silent last-wins
(:mod:`fcap.config.strict_yaml`), in files and in override values alike.

Every leaf key remembers which file (or "command line", "profile tiny",
"variant asr") set it, so validation errors can name the right source.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import yaml

from fcap.config import strict_yaml
from fcap.config.errors import ConfigError, Problem
from registry import suggest

NAME_KEYS = ("name", "task")  # keys that select a registered component

# Files fcap ships (package data, so wheels have them too): the paper's base setup and the
# profiles. ``base: fcap://base/frozen_captioner.yaml`` names one from any folder.
BUILTIN_SCHEME = "fcap://"
BUILTIN_DIR = Path(__file__).resolve().parents[1] / "builtin"


def builtin_files(folder: str = "") -> list[str]:
    """Every shipped YAML as ``fcap://REL`` (under ``folder`` only, when given)."""
    root = BUILTIN_DIR / folder
    return sorted(f"{BUILTIN_SCHEME}{p.relative_to(BUILTIN_DIR).as_posix()}"
                  for p in root.rglob("*.yaml"))


def builtin_path(ref: str, *, source: str, key: str) -> Path:
    """``fcap://base/frozen_captioner.yaml`` -> that file inside the installed fcap package;
    a ConfigError naming ``source``/``key`` and every shipped file when there is none."""
    rel = ref[len(BUILTIN_SCHEME):]
    path = (BUILTIN_DIR / rel).resolve()
    if not (path.is_file() and path.is_relative_to(BUILTIN_DIR)):
        raise ConfigError(Problem(source, key, (
            f"no built-in file {ref} (fcap ships {BUILTIN_DIR}); "
            f"known: {', '.join(builtin_files()) or '(none: is the fcap install complete?)'}")))
    return path


class Origins:
    """dotted key -> source, with longest-prefix lookup."""

    def __init__(self, default: str) -> None:
        self.default = default
        self._map: dict[str, str] = {}

    def record(self, data: Any, source: str, prefix: str = "") -> None:
        """Mark every key under ``prefix`` in ``data`` as set by ``source``."""
        if prefix:
            self._map[prefix] = source
        if isinstance(data, Mapping):
            for k, v in data.items():
                self.record(v, source, f"{prefix}.{k}" if prefix else str(k))

    def update(self, other: "Origins") -> None:
        self._map.update(other._map)

    def __call__(self, key: str) -> str:
        while key:  # a.b[1].c, a.b[1], a.b, a
            if key in self._map:
                return self._map[key]
            key = key[:max(key.rfind("."), key.rfind("["), 0)]
        return self.default

    def copy(self) -> "Origins":
        out = Origins(self.default)
        out._map = dict(self._map)
        return out


def _nearby(path: Path) -> str:
    """For a file that is not there: the closest YAML name beside it, or that its folder is missing."""
    if not path.parent.is_dir():
        return f" (its folder {path.parent} does not exist either)"
    return suggest(path.name, sorted(p.name for p in path.parent.glob("*.y*ml")), otherwise="")


def read_yaml(path: Path, *, what: str = "config", problems: list[Problem] | None = None) -> dict:
    """Safe-load one file; any problem is a ConfigError naming the file.

    Duplicate keys are appended to ``problems`` when given (the caller reports
    them with the file's other problems), else raised, all of them at once.
    """
    try:
        text = Path(path).read_text()
    except OSError as err:
        hint = _nearby(Path(path)) if isinstance(err, FileNotFoundError) else ""
        raise ConfigError(Problem(str(path), "", f"cannot read {what} file: {err.strerror}{hint}")) from None
    try:
        data, duplicates = strict_yaml.load(text, source=str(path))
    except yaml.YAMLError as err:
        raise ConfigError(Problem(str(path), "", f"invalid YAML: {err}")) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError([*duplicates, Problem(str(path), "", f"expected a mapping at the top "
                                                               f"level, got {kind}")])
    if problems is None and duplicates:
        raise ConfigError(duplicates, title=f"invalid {what} file {path}")
    if problems is not None:
        problems.extend(duplicates)
    return data


def load_with_bases(path: str | Path, _chain: tuple[Path, ...] = (), *,
                    problems: list[Problem] | None = None) -> tuple[dict, Origins]:
    """Load ``path`` with its ``base:`` chain deep-merged under it.

    ``base:`` is a path relative to the file that names it, or ``fcap://REL`` for a
    file fcap ships (:func:`builtin_path`); chains are allowed and a cycle is an
    error that prints the chain. Duplicate keys of every file
    in the chain go to ``problems`` when given, else are raised together.
    """
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise ConfigError(Problem(str(_chain[-1]), "base", f"base cycle: {cycle}"))
    if problems is None:  # the whole chain's duplicates in one message
        found: list[Problem] = []
        try:
            data, origins = load_with_bases(path, _chain, problems=found)
        except ConfigError as err:
            raise ConfigError([*found, *err.problems], title=err.title) from None
        if found:
            raise ConfigError(found, title=f"invalid config file {path}")
        return data, origins
    data = read_yaml(path, problems=problems)
    base = data.pop("base", None)
    origins = Origins(str(path))
    if base is None:
        origins.record(data, str(path))
        return data, origins
    if not isinstance(base, str):
        raise ConfigError(Problem(str(path), "base", f"expected a file path (str), got {base!r}"))
    if base.startswith(BUILTIN_SCHEME):
        base_path = builtin_path(base, source=str(path), key="base")
    else:
        base_path = path.parent / base
        if not base_path.exists():
            raise ConfigError(Problem(str(path), "base",
                                      f"base file not found: {base_path}{_nearby(base_path)}"))
    base_data, base_origins = load_with_bases(base_path, (*_chain, path), problems=problems)
    origins.update(base_origins)
    origins.record(data, str(path))
    return deep_merge(base_data, data), origins


def deep_merge(under: Any, over: Any) -> Any:
    """Merge ``over`` onto ``under`` recursively (``over`` wins).

    A block whose ``name:``/``task:`` changes is replaced, not merged: options
    of one component never leak into another.
    """
    if not (isinstance(under, Mapping) and isinstance(over, Mapping)):
        return copy.deepcopy(over)
    for key in NAME_KEYS:
        if key in under and key in over and under[key] != over[key]:
            return copy.deepcopy(over)
    out = copy.deepcopy(dict(under))
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if k in out else copy.deepcopy(v)
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """``a.b.c=value`` -> ("a.b.c", YAML-parsed value); ``a={x: 1, x: 2}`` is an error."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(Problem("command line", text, "an override must look like key.sub=value"))
    value, duplicates = None, []
    try:
        if raw.strip():
            value, duplicates = strict_yaml.load(raw, source="command line")
    except yaml.YAMLError as err:
        raise ConfigError(Problem("command line", key, f"value is not valid YAML: {err}")) from None
    if duplicates:
        raise ConfigError([Problem(p.source, f"{key}.{p.key}", p.message) for p in duplicates])
    return key, value


def set_dotted(data: dict, key: str, value: Any, *, source: str, origins: Origins) -> None:
    """Replace the value at dotted ``key`` (creating missing parent mappings).

    A part may index a list: ``stages.pretrain.data.children[1].p=0.1`` sets the second
    mixture child's ``p`` (the list must exist and be long enough; lists are not created).

    Whether the key is *allowed* is decided later by validation against the
    component dataclasses, so a misspelt override is reported like a misspelt
    YAML key (with the source, allowed keys and the closest match).
    """
    steps = _key_steps(key, source)
    node: Any = data
    for i, step in enumerate(steps[:-1]):
        if isinstance(step, int):
            node = _list_item(node, step, key=key, where=_steps_text(steps[: i + 1]), source=source)
            continue
        if not isinstance(node, dict):
            raise ConfigError(Problem(source, key, f"cannot set a sub-key: '{_steps_text(steps[:i])}' "
                                                   f"is {type(node).__name__} {node!r}, not a mapping"))
        child = node.get(step)
        if child is None and not isinstance(steps[i + 1], int):
            child = node[step] = {}
        node = child
    last = steps[-1]
    if isinstance(last, int):
        _list_item(node, last, key=key, where=_steps_text(steps), source=source)
        node[last] = copy.deepcopy(value)
    elif isinstance(node, dict):
        node[last] = copy.deepcopy(value)
    else:
        raise ConfigError(Problem(source, key, f"cannot set a sub-key: '{_steps_text(steps[:-1])}' "
                                               f"is {type(node).__name__} {node!r}, not a mapping"))
    origins.record(value, source, key)


def indexes_absent_list(data: dict, key: str) -> bool:
    """True when ``key`` indexes a list (``a.b[1].c``) that ``data`` does not hold at all
    (``a.b`` absent or null): an experiment's variant without the list (Table 1's mixture
    children exist in one variant). A list that is there but too short, or something else
    than a list, is :func:`set_dotted`'s error."""
    node: Any = data
    for step in _key_steps(key, "command line"):
        if isinstance(step, int):
            return node is None
        if not isinstance(node, dict):
            return False
        node = node.get(step)
    return False


def _key_steps(key: str, source: str) -> list[str | int]:
    """``a.b[1].c`` -> ["a", "b", 1, "c"]; a malformed index is a ConfigError."""
    steps: list[str | int] = []
    for part in key.split("."):
        name, bracket, rest = part.partition("[")
        if not name:
            raise ConfigError(Problem(source, key, "an empty key part (write a.b.c, a.list[0].c)"))
        steps.append(name)
        while bracket:
            index, close, rest = rest.partition("]")
            if not close or not index.isdigit() or (rest and not rest.startswith("[")):
                raise ConfigError(Problem(source, key, f"bad list index in '{part}' (write "
                                                       f"{name}[0], {name}[1], ...)"))
            steps.append(int(index))
            bracket, rest = rest[:1], rest[1:]
    return steps


def _steps_text(steps: list[str | int]) -> str:
    out = ""
    for s in steps:
        out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else s)
    return out


def _list_item(node: Any, index: int, *, key: str, where: str, source: str) -> Any:
    if not isinstance(node, list):
        what = "nothing" if node is None else f"{type(node).__name__} {node!r}"
        raise ConfigError(Problem(source, key, f"'{where}' indexes a list, but "
                                               f"'{where.rpartition('[')[0]}' is {what}"))
    if index >= len(node):
        raise ConfigError(Problem(source, key, f"'{where}': the list has {len(node)} item(s) "
                                               f"(indices 0..{len(node) - 1})"))
    return node[index]
