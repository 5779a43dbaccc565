"""Turn an experiment file into a plan: variants x stages, validated and hashed.

Order of application: file (with its ``base:`` chain) -> profile -> variant /
grid overrides -> command-line overrides -> validation of every stage against
its task's config dataclass. All problems of all variants are raised at once.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from fcap.config import schema
from fcap.config.errors import ConfigError, Problem
from fcap.config.loader import Origins, deep_merge, load_with_bases, parse_override, set_dotted
from fcap.experiment import profiles
from fcap.experiment.spec import (EXPERIMENT_KEYS, ONCE_VARIANT, STAGE_KEYS, ExperimentHeader,
                                  Resources, name_problem)
from fcap.experiment.variants import expand
from registry import TASKS


@dataclass
class Run:
    """One stage of one variant."""

    experiment: str
    variant: str
    stage: str
    task: str
    cfg: Any  # instance of the task's config dataclass
    init_from: str | None
    deps: tuple[str, ...]  # stage names this one waits for (init_from first)
    resources: Resources
    run_dir: Path
    config_hash: str
    resolved: dict  # the variant's fully resolved experiment document (config.yaml)

    @property
    def key(self) -> str:
        return f"{self.variant}/{self.stage}"


@dataclass
class Plan:
    """Every run of an experiment, in execution order; ``selected`` is what to launch."""

    name: str
    source: Path
    header: ExperimentHeader
    runs: list[Run]
    selected: list[Run]
    profile: str | None = None
    notes: list[str] = field(default_factory=list)

    def get(self, variant: str, stage: str) -> Run:
        """The run of ``stage`` in ``variant`` (a ``once: true`` stage's single run)."""
        for want in (variant, ONCE_VARIANT):
            for run in self.runs:
                if run.variant == want and run.stage == stage:
                    return run
        raise KeyError(f"{variant}/{stage}")

    def variants(self) -> list[str]:
        return list(dict.fromkeys(r.variant for r in self.runs if r.variant != ONCE_VARIANT))


def build_plan(path: str | Path, *, overrides: Sequence[str] = (), profile: str | None = None,
               only: Sequence[str] | None = None, stages: Sequence[str] | None = None,
               plugins: Sequence[str] = (), launcher: str | None = None) -> Plan:
    """Load, expand and validate an experiment; raise one ConfigError for every problem."""
    from fcap.components import load_builtins
    from fcap.plugins import load_entry_point_plugins, load_plugins

    path = Path(path)
    load_problems: list[Problem] = []  # duplicate keys: reported with the other problems
    doc, origins = load_with_bases(path, problems=load_problems)
    load_builtins()
    load_entry_point_plugins()
    yaml_plugins = doc.get("plugins") or []
    if not isinstance(yaml_plugins, list):
        raise ConfigError(Problem(origins("plugins"), "plugins", "expected a list of plugins"))
    load_plugins([*yaml_plugins], relative_to=path.resolve().parent)
    load_plugins(list(plugins))
    notes = []
    cli = [parse_override(o) for o in overrides]
    # The automatic profile is decided on the fully merged config: a datasets.root set by the
    # file, a variant or the command line means real data, never the generated world.
    if profile is None and all(profiles.needs_default(merged, experiment=path)
                               for merged in _merged_variants(doc, origins, cli)):
        profile = profiles.DEFAULT
        notes.append(profiles.default_note(path))
    if profile:
        doc = profiles.apply(doc, origins, profile, experiment=path)
    if launcher:
        doc["launcher"] = deep_merge(doc.get("launcher") or {}, {"name": launcher})
        origins.record(doc["launcher"], "command line", "launcher")

    problems: list[Problem] = [*load_problems]
    variant_sets = expand(doc, origins, problems)
    base_doc = {k: v for k, v in doc.items() if k not in ("variants", "grid")}
    header, runs = None, []
    for vname, vset in variant_sets:
        vdoc, vorigins = copy.deepcopy(base_doc), origins.copy()
        try:
            for key, value in vset:
                set_dotted(vdoc, key, value, source=f"variant {vname}", origins=vorigins)
            for key, value in cli:
                set_dotted(vdoc, key, value, source="command line", origins=vorigins)
        except ConfigError as err:
            problems.extend(err.problems)
            continue
        h, vruns = _resolve_variant(vdoc, vorigins, vname, path, problems)
        header = header or h
        _add_runs(runs, vruns, vname, problems)
    problems = list(dict.fromkeys(problems))
    if problems or header is None:
        raise ConfigError(problems or [Problem(str(path), "", "no runs")],
                          title=f"invalid experiment {path}")
    selected = _select(runs, only, stages, path)
    return Plan(name=header.name, source=path, header=header, runs=runs, selected=selected,
                profile=profile, notes=notes)


def _merged_variants(doc: dict, origins: Origins, cli: list) -> list[dict]:
    """Each variant's document with its overrides and the command line's applied (no profile).

    Only for deciding the automatic profile: problems are reported by the real pass.
    """
    out = []
    base_doc = {k: v for k, v in doc.items() if k not in ("variants", "grid")}
    for _vname, vset in expand(doc, origins, []) or [("", [])]:
        vdoc = copy.deepcopy(base_doc)
        for key, value in [*vset, *cli]:
            try:
                set_dotted(vdoc, key, value, source="probe", origins=origins.copy())
            except ConfigError:
                pass
        out.append(vdoc)
    return out


def _add_runs(runs: list[Run], new: list[Run], vname: str, problems: list[Problem]) -> None:
    """Append a variant's runs; a ``once: true`` stage is kept once and must not vary."""
    for run in new:
        if run.variant == ONCE_VARIANT:
            first = next((r for r in runs if r.variant == ONCE_VARIANT and r.stage == run.stage), None)
            if first is not None:
                if first.config_hash != run.config_hash:
                    key = f"stages.{run.stage}.once"
                    problems.append(Problem("variant " + vname, key, (
                        f"stage '{run.stage}' runs once for all variants (once: true), but variant "
                        f"'{vname}' changes its config; drop 'once' or the variant's override")))
                continue
        runs.append(run)


def _select(runs: list[Run], only, stages, path: Path) -> list[Run]:
    problems = []
    variants = list(dict.fromkeys(r.variant for r in runs if r.variant != ONCE_VARIANT))
    names = list(dict.fromkeys(r.stage for r in runs))
    for flag, what, wanted, known in (("--only", "variant", only, variants),
                                      ("--stages", "stage", stages, names)):
        for w in wanted or ():
            if w not in known:
                close = difflib.get_close_matches(w, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                problems.append(Problem("command line", flag, f"no such {what} "
                                        f"'{w}'{hint} known: {', '.join(known)}"))
    if problems:
        raise ConfigError(problems, title=f"invalid selection for {path}")
    return [r for r in runs if (not only or r.variant in only or r.variant == ONCE_VARIANT)
            and (not stages or r.stage in stages)]


def _resolve_variant(doc: dict, origins: Origins, vname: str, path: Path,
                     problems: list[Problem]) -> tuple[ExperimentHeader | None, list[Run]]:
    header_data = {k: doc[k] for k in EXPERIMENT_KEYS if k in doc and k != "stages"}
    header_data.pop("variant", None)
    header = schema.collect(ExperimentHeader, header_data, source_of=origins, key="",
                            problems=problems)
    stages_doc = doc.get("stages")
    if not isinstance(stages_doc, dict) or not stages_doc:
        problems.append(Problem(origins("stages"), "stages",
                                "expected a non-empty mapping: stage name -> {task: ..., ...}"))
        return header, []
    shared = {k: v for k, v in doc.items() if k not in EXPERIMENT_KEYS}
    used: set[str] = set()
    offered: set[str] = set()
    stage_specs = {}
    for sname, block in stages_doc.items():
        spec = _stage(str(sname), block, shared, origins, problems, used, offered)
        if spec is not None:
            stage_specs[str(sname)] = spec
    for key in shared:
        # A profile serves many experiments: its blocks that no stage here takes are unused.
        if key not in used and not origins(key).startswith("profile "):
            allowed = sorted(set(EXPERIMENT_KEYS) | offered)
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(Problem(origins(key), key, (
                f"unknown top-level key '{key}'{hint} it is not an experiment key and no stage's "
                f"task takes it; allowed: {', '.join(allowed)}")))
    for sname, spec in stage_specs.items():
        for dep, dkey in spec["deps"]:
            if spec["once"] and dep in stage_specs and not stage_specs[dep]["once"]:
                problems.append(Problem(origins(dkey), dkey, (
                    f"stage '{sname}' runs once for all variants (once: true) so it cannot depend "
                    f"on '{dep}', which runs per variant")))
    order = _toposort(stage_specs, list(stages_doc), origins, problems)
    if header is None or len(stage_specs) != len(stages_doc) or order is None:
        return header, []
    return header, _make_runs(header, vname, order, stage_specs, path)


def _stage(sname, block, shared, origins, problems, used, offered):
    key = f"stages.{sname}"
    bad_name = name_problem(sname)
    if bad_name:
        problems.append(Problem(origins(key), key, f"a stage name {bad_name}"))
    if not isinstance(block, dict):
        problems.append(Problem(origins(key), key, f"expected a mapping with 'task:', got {block!r}"))
        return None
    task = block.get("task")
    if task is None:
        problems.append(Problem(origins(key), f"{key}.task", "missing required key 'task'; known "
                                f"tasks: {', '.join(TASKS.names())}"))
        return None
    if task not in TASKS:
        problems.append(Problem(origins(f"{key}.task"), f"{key}.task", TASKS.unknown_message(task)))
        return None
    entry = TASKS.get(task)
    fields = {f.name for f in dataclasses.fields(entry.config)} if entry.config else set()
    offered.update(fields)
    merged: dict = {}
    from_shared = set()
    for k in shared:
        if k in fields:
            merged[k] = shared[k]
            used.add(k)
            if k not in block:
                from_shared.add(k)
    body = {k: v for k, v in block.items() if k not in STAGE_KEYS}
    merged = deep_merge(merged, body)

    def source_of(dotted: str) -> str:
        return origins(_shared_key(dotted, key, from_shared))

    local: list[Problem] = []
    cfg = schema.collect(entry.config, merged, source_of=source_of, key=key, problems=local) \
        if entry.config else None
    if entry.config is None and body:
        local.extend(Problem(origins(f"{key}.{k}"), f"{key}.{k}", f"task '{task}' takes no options")
                     for k in body)
    # A mistake inside a shared block is reported at the key where it was written.
    problems.extend(Problem(p.source, _shared_key(p.key, key, from_shared), p.message) for p in local)
    resources = schema.collect(Resources, block.get("resources") or {}, source_of=origins,
                               key=f"{key}.resources", problems=problems)
    deps = []
    init_from = block.get("init_from")
    after = block.get("after") or []
    if not isinstance(after, list):
        problems.append(Problem(origins(f"{key}.after"), f"{key}.after", "expected a list of stage names"))
        after = []
    for dep, dkey in [(init_from, "init_from")] + [(a, "after") for a in after]:
        if dep is not None:
            deps.append((str(dep), f"{key}.{dkey}"))
    once = block.get("once", False)
    if not isinstance(once, bool):
        problems.append(Problem(origins(f"{key}.once"), f"{key}.once",
                                f"expected bool (true/false), got {once!r}"))
        return None
    if (entry.config and cfg is None) or resources is None or bad_name:
        return None
    return {"task": task, "cfg": cfg, "init_from": init_from, "deps": deps, "resources": resources,
            "block": block, "once": once}


def _shared_key(dotted: str, stage_key: str, from_shared: set[str]) -> str:
    if dotted.startswith(stage_key + "."):
        rest = dotted[len(stage_key) + 1:]
        if rest.split(".")[0].split("[")[0] in from_shared:
            return rest
    return dotted


def _toposort(specs: dict, names: list[str], origins: Origins, problems: list[Problem]):
    ok = True
    for sname, spec in specs.items():
        for dep, dkey in spec["deps"]:
            if dep not in names:
                close = difflib.get_close_matches(dep, names, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                problems.append(Problem(origins(dkey), dkey, f"no stage '{dep}'{hint} stages: "
                                        f"{', '.join(names)}"))
                ok = False
    if not ok:
        return None
    order, state = [], {}

    def visit(n: str, chain: list[str]) -> bool:
        if state.get(n) == "done":
            return True
        if state.get(n) == "active":
            cycle = " -> ".join([*chain[chain.index(n):], n])
            problems.append(Problem(origins(f"stages.{n}"), f"stages.{n}",
                                    f"stage dependency cycle: {cycle}"))
            return False
        state[n] = "active"
        for dep, _ in specs.get(n, {"deps": []})["deps"]:
            if not visit(dep, [*chain, n]):
                return False
        state[n] = "done"
        order.append(n)
        return True

    for n in names:
        if n in specs and not visit(n, []):
            return None
    return order


def _make_runs(header: ExperimentHeader, vname: str, order: list[str], specs: dict,
               path: Path) -> list[Run]:
    from fcap.plugins import resolve_plugin_paths

    out_root = Path(header.output_root)
    if not out_root.is_absolute():
        out_root = Path.cwd() / out_root
    resolved_stages = {}
    for sname in specs:
        spec = specs[sname]
        body = schema.to_dict(spec["cfg"]) if spec["cfg"] is not None else {}
        stage_doc = {"task": spec["task"]}
        if spec["init_from"] is not None:
            stage_doc["init_from"] = spec["init_from"]
        after = [d for d, k in spec["deps"] if k.endswith(".after")]
        if after:
            stage_doc["after"] = after
        if spec["once"]:
            stage_doc["once"] = True
        stage_doc["resources"] = schema.to_dict(spec["resources"])
        stage_doc.update(body)
        resolved_stages[sname] = stage_doc
    resolved = {
        "name": header.name, "variant": vname, "description": header.description,
        "output_root": str(out_root), "seed": header.seed,
        "plugins": resolve_plugin_paths(header.plugins, relative_to=path.resolve().parent),
        "launcher": schema.to_dict(header.launcher), "report": schema.to_dict(header.report),
        "stages": resolved_stages,
    }
    hashes: dict[str, str] = {}
    runs = []
    for sname in order:
        spec = specs[sname]
        body = {k: v for k, v in resolved_stages[sname].items() if k != "resources"}
        dep_names = tuple(d for d, _ in spec["deps"])
        blob = json.dumps({"stage": body, "deps": {d: hashes[d] for d in dep_names},
                           "seed": header.seed}, sort_keys=True, default=str)
        hashes[sname] = hashlib.sha256(blob.encode()).hexdigest()[:16]
        variant = ONCE_VARIANT if spec["once"] else vname
        runs.append(Run(experiment=header.name, variant=variant, stage=sname, task=spec["task"],
                        cfg=spec["cfg"], init_from=spec["init_from"], deps=dep_names,
                        resources=spec["resources"], run_dir=out_root / header.name / variant / sname,
                        config_hash=hashes[sname], resolved=resolved))
    return runs


def plan_from_argv(prog: str, argv: list[str]) -> Plan:
    """``EXPERIMENT.yaml [key=value ...] [--profile P] [--plugin X]`` -> its plan (subcommands)."""
    import argparse

    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("experiment")
    p.add_argument("overrides", nargs="*", help="dotted overrides key.sub=value, as for the run")
    p.add_argument("--profile")
    p.add_argument("--plugin", action="append", default=[])
    args = p.parse_intermixed_args(argv)
    return build_plan(args.experiment, overrides=args.overrides, profile=args.profile,
                      plugins=args.plugin)
