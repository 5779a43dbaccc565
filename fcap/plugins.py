"""Plugins: user modules that register components without forking fcap.

Three explicit ways, each imported once: ``--plugin NAME_OR_FILE.py`` on the
command line, ``plugins: [...]`` in an experiment (files relative to the YAML),
and the entry-point group ``fcap.plugins`` of installed packages. A failing
import raises :class:`PluginError` naming the plugin and the original error.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Iterable

ENTRY_POINT_GROUP = "fcap.plugins"
_loaded: dict[str, str] = {}  # plugin key (resolved file or module name) -> module name


class PluginError(ImportError):
    """A plugin could not be loaded; the message names it and the cause."""


def _is_file(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec


def resolve_plugin_paths(specs: Iterable[str], *, relative_to: Path | None = None) -> list[str]:
    """File plugins as absolute paths (module names unchanged), for resolved configs."""
    out = []
    for spec in specs:
        if _is_file(spec):
            path = Path(spec)
            if not path.is_absolute() and relative_to is not None:
                path = relative_to / path
            out.append(str(path.resolve()))
        else:
            out.append(spec)
    return out


def load_plugin(spec: str, *, relative_to: Path | None = None) -> str:
    """Import one plugin (a module name or a .py file); return its module name."""
    if _is_file(spec):
        path = Path(resolve_plugin_paths([spec], relative_to=relative_to)[0])
        key = str(path)
        if key in _loaded:
            return _loaded[key]
        if not path.exists():
            raise PluginError(f"plugin '{spec}': file not found: {path}")
        digest = hashlib.sha1(key.encode()).hexdigest()[:8]
        name = f"fcap_plugin_{path.stem}_{digest}"
        try:
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
            sys.modules[name] = module
            module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        except Exception as err:
            sys.modules.pop(name, None)
            raise PluginError(f"plugin '{spec}' ({path}) failed to import: "
                              f"{type(err).__name__}: {err}") from err
        _loaded[key] = name
        return name
    if spec in _loaded:
        return _loaded[spec]
    try:
        importlib.import_module(spec)
    except Exception as err:
        raise PluginError(f"plugin '{spec}' failed to import: {type(err).__name__}: {err}") from err
    _loaded[spec] = spec
    return spec


def loaded_plugins() -> list[str]:
    """Every plugin imported so far (files as absolute paths, modules by name), in order.

    Launchers hand these to jobs on other machines so they import the same plugins;
    entry-point plugins are left out (a job loads those itself).
    """
    return [key for key in _loaded if not key.startswith("entry-point:")]


def load_plugins(specs: Iterable[str], *, relative_to: Path | None = None) -> list[str]:
    return [load_plugin(s, relative_to=relative_to) for s in specs]


def load_entry_point_plugins() -> list[str]:
    """Import every installed package's ``fcap.plugins`` entry point, sorted by name."""
    loaded = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        key = f"entry-point:{ep.name}={ep.value}"
        if key in _loaded:
            continue
        try:
            ep.load()
        except Exception as err:
            raise PluginError(f"plugin entry point '{ep.name}' ({ep.value}) failed to import: "
                              f"{type(err).__name__}: {err}") from err
        _loaded[key] = ep.value
        loaded.append(ep.name)
    return loaded
