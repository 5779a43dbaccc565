"""Import every built-in component so it registers itself.

Each sub-package's ``__init__`` imports its own component modules explicitly;
this list is the one place that says which packages ship components.
"""
from __future__ import annotations

import importlib

BUILTIN_PACKAGES = (
    "fcap.models",
    "fcap.data",
    "fcap.train",
    "fcap.eval",
    "fcap.pseudolabel",
    "fcap.tasks",
    "fcap.launchers",
)

_loaded = False


def load_builtins() -> None:
    """Import the built-in component packages once (idempotent)."""
    global _loaded
    if _loaded:
        return
    for name in BUILTIN_PACKAGES:
        importlib.import_module(name)
    _loaded = True
