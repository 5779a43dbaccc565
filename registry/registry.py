"""The one generic registry: a name -> (object, config dataclass, origin) table.

Every kind of pluggable component in fcap (tasks, data sources, gates, ...) is
an instance of :class:`Registry`; the instances live in ``registry/__init__.py``
with the contract each kind's objects must meet.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping


SUGGEST_CUTOFF = 0.6  # difflib similarity a name needs to be suggested ("vectr" -> "vector": 0.91)


def suggest(name: Any, known: Iterable[Any], *, otherwise: str = ";") -> str:
    """``"; did you mean 'x'?"`` for the entry of ``known`` closest to ``name``, else
    ``otherwise``: ``";"`` before the list of what is known that the message goes on with.

    fcap's one "did you mean" for unknown names, keys and choices: every error
    message appends it right after naming what was not found.
    """
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1,
                                      cutoff=SUGGEST_CUTOFF)
    return f"; did you mean '{close[0]}'?" if close else otherwise


def origin_of(obj: Any) -> str:
    """``module:qualname`` of a class or function (what error messages print)."""
    module = getattr(obj, "__module__", None) or "?"
    qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}:{qualname}"


@dataclass(frozen=True)
class Entry:
    """One registered component."""

    name: str
    obj: Any
    config: type | None  # frozen dataclass of the component's options, or None
    origin: str  # module:qualname of ``obj``
    # named outputs (tasks): name -> path relative to the run directory; the first is the
    # default of a reference {from: stage}
    outputs: tuple[tuple[str, str], ...] = ()

    def output_path(self, name: str | None) -> tuple[str, str]:
        """(output name, relative path) of ``name`` (None: the first output); KeyError if none."""
        table = dict(self.outputs)
        if name is None:
            if not self.outputs:
                raise KeyError(name)
            return self.outputs[0]
        return name, table[name]

    @property
    def doc(self) -> str:
        """First line of the object's docstring ('' when it has none)."""
        text = (getattr(self.obj, "__doc__", None) or "").strip()
        return text.splitlines()[0] if text else ""


class UnknownComponentError(KeyError):
    """Raised for a name that is not registered; the message suggests and lists."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry:
    """A named table of components of one kind.

    ``@REG.register("name", config=SomeConfig)`` registers a class or function.
    ``config`` must be a frozen dataclass (or ``None`` for no options).
    ``outputs`` (tasks): ``{"name": "path relative to the run directory", ...}``,
    the artefacts a later stage can reference (``{from: stage, output: name}``).
    Registering a *different* object under a taken name raises ``ValueError``
    naming this registry, the key and the origins of both objects; registering
    the same object again (a module imported twice) is a no-op.
    """

    def __init__(self, kind: str, doc: str = "") -> None:
        self.kind = kind
        self.__doc__ = doc or f"Registry of {kind} components."
        self._entries: dict[str, Entry] = {}

    # -- registration -------------------------------------------------------
    def register(self, name: str, *, config: type | None = None,
                 outputs: Mapping[str, str] | None = None) -> Callable[[Any], Any]:
        if not isinstance(name, str) or not name:
            raise ValueError(f"registry '{self.kind}': a name must be a non-empty string, got {name!r}")
        if config is not None:
            if not (dataclasses.is_dataclass(config) and isinstance(config, type)):
                raise ValueError(
                    f"registry '{self.kind}': config for '{name}' must be a dataclass type, "
                    f"got {config!r}"
                )
            if not config.__dataclass_params__.frozen:  # type: ignore[attr-defined]
                raise ValueError(
                    f"registry '{self.kind}': config {origin_of(config)} for '{name}' "
                    "must be a frozen dataclass (@dataclass(frozen=True))"
                )

        def decorator(obj: Any) -> Any:
            self.add(name, obj, config=config, outputs=outputs)
            return obj

        return decorator

    def add(self, name: str, obj: Any, *, config: type | None = None,
            outputs: Mapping[str, str] | None = None) -> Entry:
        for oname, rel in (outputs or {}).items():
            if not (isinstance(oname, str) and isinstance(rel, str) and oname and rel
                    and not rel.startswith("/") and ".." not in rel.split("/")):
                raise ValueError(f"registry '{self.kind}': output {oname!r} of '{name}' must map "
                                 f"a name to a path inside the run directory, got {rel!r}")
        entry = Entry(name=name, obj=obj, config=config, origin=origin_of(obj),
                      outputs=tuple((outputs or {}).items()))
        taken = self._entries.get(name)
        if taken is not None:
            if taken.origin == entry.origin and taken.config is config:
                # Same component seen again (e.g. a plugin file imported under
                # two module names): keep the first, nothing is lost.
                return taken
            raise ValueError(
                f"registry '{self.kind}': name '{name}' is already taken by "
                f"{taken.origin}; cannot register {entry.origin} under it"
            )
        self._entries[name] = entry
        return entry

    # -- lookup -------------------------------------------------------------
    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponentError(self.unknown_message(name)) from None

    def unknown_message(self, name: Any) -> str:
        known = sorted(self._entries)
        return (f"no {self.kind} '{name}' in registry '{self.kind}'{suggest(name, known)} known: "
                + (", ".join(known) if known else "(none registered)"))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"
