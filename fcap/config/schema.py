"""Validate plain YAML data against frozen dataclasses, collecting every problem.

A dataclass field is one of: bool, int, float, str, ``Literal[...]``,
``Optional[X]``, ``list[X]`` / ``tuple[X, ...]``, ``dict[str, X]``, a nested
frozen dataclass, ``Any``, or a registry selection declared with
:func:`component` (a YAML block ``{name: <registered name>, **options}``).

Float fields also accept strings such as ``"1e-3"``: PyYAML (YAML 1.1) reads
``1e-3`` without a dot as a string, and rejecting the paper's learning rates
for that would teach nothing.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

from fcap.config.errors import ConfigError, Problem
from registry import Registry, suggest

_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MISSING = dataclasses.MISSING


@dataclass(frozen=True)
class Component:
    """A registry entry chosen in a config, with its validated options."""

    registry: Registry = dataclasses.field(repr=False, compare=False)
    name: str
    cfg: Any  # instance of the entry's config dataclass, or None

    @property
    def entry(self):
        return self.registry.get(self.name)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Call the registered object as ``obj(cfg, *args, **kwargs)``."""
        return self.entry.obj(self.cfg, *args, **kwargs)


def component(registry: Registry, default: str | None = None, *, required: bool = False,
              name_key: str = "name", **options: Any) -> Any:
    """A dataclass field selecting an entry of ``registry``.

    ``default`` is the entry used when the key is absent (with ``options``);
    ``default=None`` without ``required`` makes the field optional (``None``).
    """
    meta = {"registry": registry, "name_key": name_key, "default_name": default}
    if required:
        return dataclasses.field(metadata=meta)
    if default is None:
        return dataclasses.field(default=None, metadata=meta)

    def factory() -> Component:
        return build_component(registry, {name_key: default, **options}, name_key=name_key)

    return dataclasses.field(default_factory=factory, metadata=meta)


def run_option(default: Any) -> Any:
    """A task option that changes how a stage runs, not the result it computes (decode
    workers, a failure budget, how often to log or save): it is left out of the stage's
    config hash, so changing it resumes the stage, or leaves a complete one complete,
    instead of moving its outputs aside and starting from scratch."""
    return dataclasses.field(default=default, metadata={"run_option": True})


def input_path(default: Any = None) -> Any:
    """A path option naming a file or folder the stage's result is made from (adapters
    trained elsewhere): DONE.json records its content as it does a ``{from: STAGE}``
    reference's (fcap/experiment/inputs.py), so a complete stage reruns when what the
    path holds changed, not only when the path did."""
    return dataclasses.field(default=default, metadata={"input_path": True})


def input_paths(cfg: Any) -> dict[str, str]:
    """``{dotted key: path}`` of the :func:`input_path` options set in the config instance
    ``cfg`` (the keys :func:`input_path_keys` finds in its class)."""
    out: dict[str, str] = {}
    for key in input_path_keys(type(cfg)):
        value = cfg
        for part in key.split("."):
            value = getattr(value, part, None)  # an Optional block left None: nothing set
        if isinstance(value, str) and value:
            out[key] = value
    return out


def run_options(cls: type | None, prefix: str = "") -> frozenset[str]:
    """The dotted keys of ``cls``'s fields declared with :func:`run_option`, nested config
    blocks included (``train.save_every``); a registry component's options are not."""
    return _marked(cls, "run_option", prefix)


def input_path_keys(cls: type | None) -> frozenset[str]:
    """The dotted keys of ``cls``'s fields declared with :func:`input_path` (for --list)."""
    return _marked(cls, "input_path", "")


def _marked(cls: type | None, flag: str, prefix: str) -> frozenset[str]:
    if cls is None or not dataclasses.is_dataclass(cls):
        return frozenset()
    hints = typing.get_type_hints(cls)
    out: set[str] = set()
    for f in dataclasses.fields(cls):
        if f.metadata.get(flag):
            out.add(prefix + f.name)
            continue
        tp = hints.get(f.name)
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
            tp = args[0]  # Optional[Block]
        if "registry" not in f.metadata and dataclasses.is_dataclass(tp):
            out |= _marked(tp, flag, f"{prefix}{f.name}.")
    return frozenset(out)


def build_component(registry: Registry, data: Any, *, name_key: str = "name",
                    source: str = "<config>", key: str = "") -> Component:
    """Validate one ``{name: ..., **options}`` block; raise ConfigError on problems."""
    ctx = _Ctx(lambda _k: source)
    out = ctx.component(registry, data, key, name_key)
    ctx.raise_if_any()
    return out


def from_dict(cls: type, data: Any, *, source: str = "<config>",
              source_of: Callable[[str], str] | None = None, key: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; raise one ConfigError listing every problem.

    ``source_of(dotted_key)`` names where a key came from (file, command line);
    ``key`` is the dotted prefix of ``data`` inside its document.
    """
    ctx = _Ctx(source_of or (lambda _k: source))
    out = ctx.dataclass(cls, data, key)
    ctx.raise_if_any()
    return out


def collect(cls: type, data: Any, *, source_of: Callable[[str], str], key: str,
            problems: list[Problem]) -> Any:
    """Like :func:`from_dict` but appends problems to ``problems`` (returns None on failure)."""
    ctx = _Ctx(source_of)
    out = ctx.dataclass(cls, data, key)
    problems.extend(ctx.problems)
    return None if ctx.problems else out


def to_dict(obj: Any) -> Any:
    """Plain YAML-ready data for a config object (inverse of :func:`from_dict`)."""
    if isinstance(obj, Component):
        body = to_dict(obj.cfg) if obj.cfg is not None else {}
        return {"name": obj.name, **body}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, Component) and f.metadata.get("name_key", "name") != "name":
                body = to_dict(value.cfg) if value.cfg is not None else {}
                value = {f.metadata["name_key"]: value.name, **body}
                out[f.name] = value
            else:
                out[f.name] = to_dict(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def describe_fields(cls: type | None) -> list[tuple[str, str, str]]:
    """(name, type, default) for each option of a config class (for --list and errors)."""
    if cls is None:
        return []
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        rows.append((f.name, _type_name(hints.get(f.name, Any)), _default_text(f)))
    return rows


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not _MISSING:
        return repr(f.default)
    if f.default_factory is not _MISSING:  # type: ignore[misc]
        if "registry" in f.metadata:
            try:
                return repr(f.default_factory().name)  # type: ignore[misc]
            except Exception:  # the default's own entry may not be registered yet
                return "(component)"
        try:
            return repr(to_dict(f.default_factory()))  # type: ignore[misc]
        except Exception:
            return "(factory)"
    return "(required)"


def _type_name(tp: Any) -> str:
    if tp is Any:
        return "any"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


class _Invalid(Exception):
    """A value that cannot be converted; message says why."""


def _taken_by_another(registry: Registry, name: str, option: str) -> bool:
    """Whether a component of ``registry`` other than ``name`` takes ``option``."""
    return any(other != name and (entry := registry.get(other)).config is not None
               and option in {f.name for f in dataclasses.fields(entry.config)}
               for other in registry.names())


class _Ctx:
    def __init__(self, source_of: Callable[[str], str]) -> None:
        self.source_of = source_of
        self.problems: list[Problem] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.source_of(key), key, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)

    # -- dataclasses ----------------------------------------------------------
    def dataclass(self, cls: type, data: Any, key: str,
                  unknown_note: Callable[[str], str] = lambda _name: "") -> Any:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.add(key, f"expected a mapping of {cls.__name__} options, got "
                          f"{type(data).__name__} {data!r}")
            return None
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        hints = typing.get_type_hints(cls)
        before = len(self.problems)
        for name in data:
            if name not in fields:
                self.add(_join(key, str(name)), _unknown_key(str(name), cls) + unknown_note(str(name)))
        kwargs = {}
        for name, f in fields.items():
            sub = _join(key, name)
            if name not in data:
                if f.default is _MISSING and f.default_factory is _MISSING:  # type: ignore[misc]
                    self.add(sub, f"missing required key '{name}' ({_type_name(hints[name])})")
                continue
            value = data[name]
            if "registry" in f.metadata:
                if value is None and f.default is None:
                    kwargs[name] = None
                else:
                    name_key = f.metadata["name_key"]
                    default_name = f.metadata.get("default_name")
                    defaulted = (isinstance(value, Mapping) and name_key not in value
                                 and bool(default_name))
                    if defaulted:  # options for the default component: {lr: 1e-3}: adamw's lr
                        value = {name_key: default_name, **value}
                    kwargs[name] = self.component(f.metadata["registry"], value, sub, name_key,
                                                  defaulted=defaulted)
                continue
            kwargs[name] = self.value(hints[name], value, sub)
        if len(self.problems) > before:
            return None
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as err:
            # "radius must be > 0" / "radius: ..." is reported at the field's own key
            first = re.match(r"^(\w+)\b", str(err))
            where = _join(key, first.group(1)) if first and first.group(1) in fields else key
            self.add(where, f"{cls.__name__}: {err}")
            return None

    def component(self, registry: Registry, data: Any, key: str, name_key: str, *,
                  defaulted: bool = False) -> Any:
        """``defaulted``: no file or option set ``name_key``; the field's default named it."""
        if isinstance(data, str):
            data = {name_key: data}
        if not isinstance(data, Mapping):
            self.add(key, f"expected a mapping with '{name_key}:' selecting a {registry.kind} "
                          f"(known: {', '.join(registry.names())}), got {data!r}")
            return None
        if name_key not in data:
            self.add(_join(key, name_key), f"missing required key '{name_key}' selecting a "
                                           f"{registry.kind}; known: {', '.join(registry.names())}")
            return None
        name = data[name_key]
        if name not in registry:
            self.add(_join(key, name_key), registry.unknown_message(name))
            return None
        entry = registry.get(name)
        rest = {k: v for k, v in data.items() if k != name_key}

        def note(option: str) -> str:
            if not _taken_by_another(registry, name, option):
                return ""  # a typo, not another component's option: 'did you mean' says it
            if defaulted:
                return self._default_component(key, name_key, name, registry.kind)
            return self._other_component(key, name_key, name, registry.kind, option)

        if entry.config is None:
            for k in rest:
                self.add(_join(key, str(k)), f"{registry.kind} '{name}' takes no options"
                         + note(str(k)))
            return Component(registry, name, None)
        cfg = self.dataclass(entry.config, rest, key, unknown_note=note)
        return None if cfg is None else Component(registry, name, cfg)

    def _other_component(self, key: str, name_key: str, name: str, kind: str,
                         option: str) -> str:
        """Why a block holds an option its component does not take, when the block's
        ``name:`` and that option come from different places: a dotted override
        (``launcher.name=local``) switched the component and kept the old one's options."""
        named_by = self.source_of(_join(key, name_key))
        set_by = self.source_of(_join(key, option))
        if named_by == set_by:
            return ""
        return (f" ({named_by} set '{_join(key, name_key)}: {name}', which keeps the options "
                f"given for the previous {kind}; to replace the whole block, set "
                f"{key}={{{name_key}: {name}, ...}})")

    @staticmethod
    def _default_component(key: str, name_key: str, name: str, kind: str) -> str:
        """Why a block without ``name_key`` holds an option its component does not take:
        the options were given for another component than the default one."""
        return (f" ({_join(key, name_key)} is not set, so the {kind} is the default, '{name}'; "
                f"for another {kind}'s options, name it in the whole block: "
                f"{key}={{{name_key}: NAME, ...}})")

    # -- scalar and container values ----------------------------------------------
    def value(self, tp: Any, value: Any, key: str) -> Any:
        try:
            return self._convert(tp, value, key)
        except _Invalid as err:
            self.add(key, str(err))
            return None

    def _convert(self, tp: Any, value: Any, key: str) -> Any:
        if tp is Any:
            return value
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            errors = []
            for arg in args:
                if arg is type(None):
                    continue
                trial = _Ctx(self.source_of)
                try:
                    out = trial._convert(arg, value, key)
                except _Invalid as err:
                    errors.append(str(err))
                    continue
                if not trial.problems:
                    return out
                errors.append("; ".join(p.message for p in trial.problems))
            raise _Invalid(f"expected {_type_name(tp)}, got {value!r} ({' / '.join(errors)})")
        if origin is Literal:
            if value in args:
                return value
            allowed = ", ".join(repr(a) for a in args)
            raise _Invalid(f"{value!r} is not allowed{suggest(value, args)} allowed: {allowed}")
        if origin in (list, tuple):
            if not isinstance(value, (list, tuple)):
                raise _Invalid(f"expected a list, got {type(value).__name__} {value!r}")
            if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
                if len(args) != len(value):
                    raise _Invalid(f"expected a list of {len(args)} items, got {len(value)}")
                items = [self.value(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
            else:
                item_tp = args[0] if args else Any
                items = [self.value(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
            return tuple(items) if origin is tuple else items
        if origin is dict:
            if not isinstance(value, Mapping):
                raise _Invalid(f"expected a mapping, got {type(value).__name__} {value!r}")
            val_tp = args[1] if len(args) == 2 else Any
            return {str(k): self.value(val_tp, v, _join(key, str(k))) for k, v in value.items()}
        if dataclasses.is_dataclass(tp):
            return self.dataclass(tp, value, key)
        if tp is bool:
            if isinstance(value, bool):
                return value
            raise _Invalid(f"expected bool (true/false), got {type(value).__name__} {value!r}")
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise _Invalid(f"expected int, got {type(value).__name__} {value!r}")
        if tp is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
                return float(value)
            raise _Invalid(f"expected float, got {type(value).__name__} {value!r}")
        if tp is str:
            if isinstance(value, str):
                return value
            raise _Invalid(f"expected str, got {type(value).__name__} {value!r}")
        if isinstance(tp, type) and isinstance(value, tp):
            return value
        raise _Invalid(f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _unknown_key(name: str, cls: type) -> str:
    rows = describe_fields(cls)
    names = [r[0] for r in rows]
    allowed = ", ".join(f"{n}={d}" if d != "(required)" else f"{n} (required)" for n, _, d in rows)
    return f"unknown key '{name}'{suggest(name, names)} allowed keys: {allowed or '(none)'}"
