"""Profiles: overlays such as ``tiny`` (CPU, shapes world) or ``paper``.

``--profile NAME`` looks for ``profiles/NAME.yaml`` (or
``experiments/profiles/NAME.yaml``) beside the experiment file and then in each
parent folder: the user's own profiles, which win. Then it takes fcap's built-in
``NAME`` (``tiny``, ``paper``: ``fcap/builtin/profiles/``, shipped with the
package), so ``--profile tiny`` works for an experiment kept in any folder.
``--profile FILE.yaml`` names a file, ``--profile fcap://profiles/tiny.yaml`` the
built-in one explicitly. A profile is deep-merged over the experiment, except its
``tasks:`` block: ``tasks: {caption_pretrain: {steps: 20}}`` is merged over
every stage that runs that task. Variants and command-line overrides still win.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from fcap.config.errors import ConfigError, Problem
from fcap.config.loader import (BUILTIN_DIR, BUILTIN_SCHEME, Origins, builtin_path, deep_merge,
                                load_with_bases)
from fcap.experiment.spec import DEFAULT_LAUNCHER, PROFILE_TASKS_KEY
from registry import suggest

DEFAULT = "tiny"  # run when an experiment names no dataset root


def needs_default(doc: dict, *, experiment: Path) -> bool:
    """True when the experiment reads datasets but no root is configured.

    ``doc`` is one variant's fully merged document (file, variant and command-line
    overrides). That is: a ``datasets:`` block whose ``root`` is null and which does not
    generate the shapes world, and no stage reading data at an absolute path (a source's
    ``root: /data/msrvtt`` is the user's real data). Such a run could only fail on a
    missing dataset, so
    fcap runs the tiny profile (the user's own ``profiles/tiny.yaml`` above the
    experiment, else the built-in one) and says so.
    """
    datasets = doc.get("datasets")
    if not isinstance(datasets, dict) or datasets.get("root") or datasets.get("shapes_world") is not None:
        return False
    if _absolute_data(doc.get("stages")):
        return False  # a data source or collection at an absolute path: the user's own data
    try:
        find(DEFAULT, experiment=experiment)
    except ConfigError:
        return False
    return True


def _absolute_data(value: Any) -> bool:
    """Whether a stage reads data at an absolute path: a source's ``root:`` or a label
    stage's ``videos:`` (``~`` counts as absolute). Relative ones would be read against a
    ``datasets.root``, which is what is missing."""
    from fcap.data.env import is_relative  # fcap.data loads torch: not at import

    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("root", "videos") and isinstance(item, str) and item:
                if not is_relative(item):
                    return True
            elif _absolute_data(item):
                return True
    elif isinstance(value, list):
        return any(_absolute_data(item) for item in value)
    return False


def tunes_world(key: str, value: Any) -> bool:
    """A command-line override of the shapes world's settings (``datasets.shapes_world.seed=1``
    or ``datasets.shapes_world={...}``): it changes the tiny profile's world, so it does not by
    itself turn the automatic tiny profile off (a ``datasets.root`` does)."""
    world = "datasets.shapes_world"
    return key.startswith(world + ".") or (key == world and isinstance(value, dict))


def world_off_problem(doc: dict, cli: list, *, experiment: Path) -> Problem | None:
    """``datasets.shapes_world=null`` on the command line with no ``datasets.root``: the
    stages would have nothing to read (relative source roots against the working folder)."""
    datasets = doc.get("datasets")
    if (("datasets.shapes_world", None) not in cli or not isinstance(datasets, dict)
            or datasets.get("root") or datasets.get("shapes_world") is not None):
        return None
    return Problem("command line", "datasets.shapes_world", (
        f"null turns the shapes world off, and no datasets.root is set (in {experiment}, its "
        f"variants, the profile or the command line): the stages would have no data to read. "
        f"For real data: --profile paper datasets.root=/path/to/datasets; for the tiny "
        f"profile's generated world drop datasets.shapes_world=null"))


def default_note(experiment: Path) -> str:
    return (f"no dataset root configured (datasets.root is null in {experiment}, its variants "
            f"and the command line): running the built-in '{DEFAULT}' profile (tiny models "
            f"pretrained on the synthetic shapes world, CPU). "
            f"For the real experiment: --profile paper datasets.root=/path/to/datasets")


def find(profile: str, *, experiment: Path) -> Path:
    """The file of ``--profile``: a path, ``fcap://...``, or a name (see the module docstring)."""
    if profile.startswith(BUILTIN_SCHEME):
        return builtin_path(profile, source="command line", key="--profile")
    if profile.endswith((".yaml", ".yml")) or "/" in profile:
        path = Path(profile)
        if not path.exists():
            raise ConfigError(Problem("command line", "--profile", f"profile file not found: {path}"))
        return path
    known: list[str] = []
    folders = list(experiment.resolve().parents)  # the experiment's folder first
    builtin = BUILTIN_DIR / "profiles"
    own = [d for f in folders for d in (f / "profiles", f / "experiments" / "profiles")]
    for profiles_dir in [*own, builtin]:  # the user's own first
        candidate = profiles_dir / f"{profile}.yaml"
        if candidate.is_file():
            return candidate
        if profiles_dir.is_dir():
            known += [p.stem for p in profiles_dir.glob("*.yaml")]
    raise ConfigError(Problem("command line", "--profile", (
        f"no profile '{profile}' in the folders above {experiment} or built into fcap"
        f"{suggest(profile, known)} "
        f"known: {', '.join(sorted(set(known))) or '(none)'}; looked in profiles/ and "
        f"experiments/profiles/ of {', '.join(map(str, folders))}, and in fcap's built-in "
        f"profiles {builtin}")))


def apply(doc: dict, origins: Origins, profile: str, *, experiment: Path) -> tuple[dict, "TaskOverlays"]:
    """The experiment with the profile merged over it, and the profile's per-task overlays
    (applied here to the file's stages, and by the planner to stages a variant adds)."""
    path = find(profile, experiment=experiment)
    data, _ = load_with_bases(path)
    source = f"profile {profile} ({path})"
    tasks = data.pop(PROFILE_TASKS_KEY, None) or {}
    if not isinstance(tasks, dict):
        raise ConfigError(Problem(source, PROFILE_TASKS_KEY, "expected a mapping: task name -> overlay"))
    if _other_launcher(doc, data.get("launcher")):
        data = {k: v for k, v in data.items() if k != "launcher"}
    doc = deep_merge(doc, data)
    origins.record(data, source)
    overlays = TaskOverlays(tasks, source)
    overlays.apply(doc, origins)
    return doc, overlays


def _other_launcher(doc: dict, block: Any) -> bool:
    """Whether a profile's ``launcher:`` block without ``name`` (options of the default,
    local launcher: the tiny profile's ``jobs``) meets an experiment that names another
    launcher; such a block is left out (its options are not that launcher's)."""
    if not isinstance(block, dict) or "name" in block:
        return False
    own = doc.get("launcher")
    return isinstance(own, dict) and own.get("name", DEFAULT_LAUNCHER) != DEFAULT_LAUNCHER


class TaskOverlays:
    """A profile's ``tasks:`` block: an overlay per task name, merged over every stage of that task."""

    def __init__(self, tasks: dict | None = None, source: str = "") -> None:
        self.tasks, self.source = tasks or {}, source

    def apply(self, doc: dict, origins: Origins, only: Iterable[str] | None = None) -> None:
        """Merge the overlays into ``doc``'s stages (``only``: just those stage names)."""
        wanted = None if only is None else set(only)
        for sname, block in (doc.get("stages") or {}).items():
            if wanted is not None and sname not in wanted:
                continue
            if isinstance(block, dict) and block.get("task") in self.tasks:
                overlay = self.tasks[block["task"]] or {}
                doc["stages"][sname] = deep_merge(block, overlay)
                for key, value in overlay.items():
                    origins.record(value, self.source, f"stages.{sname}.{key}")
