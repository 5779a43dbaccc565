"""Turn an experiment file into a plan: variants x stages, validated and hashed.

The flow, top to bottom: file (with its ``base:`` chain) -> profile (chosen on
the fully merged config) -> each variant's document (variant / grid overrides,
then command-line overrides) -> typed stage specs with resolved references
(fcap/experiment/stages.py, refs.py) -> runs with chained config hashes ->
selection. All problems of all variants are raised at once.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from fcap.config import schema
from fcap.config.errors import ConfigError, Problem
from fcap.config.loader import (Origins, deep_merge, indexes_absent_list, load_with_bases,
                                parse_override, set_dotted)
from fcap.experiment import label_inputs, profiles, refs, rerun
from fcap.experiment.shadowed import Shadowed
from fcap.experiment.spec import (DEFAULT_LAUNCHER, ONCE_VARIANT, ExperimentHeader, Resources,
                                 task_fields)
from fcap.experiment.stages import StageSpec, VariantResolver
from fcap.experiment.variants import expand, seed_group
from registry import suggest


@dataclass
class Run:
    """One stage of one variant: everything a launcher and ``runner.context_for`` need."""

    experiment: str
    variant: str
    stage: str
    task: str
    cfg: Any  # instance of the task's config dataclass
    init_from: str | None
    deps: tuple[str, ...]  # dependency names (stages; 'file.yaml:stage' for other experiments)
    resources: Resources
    run_dir: Path
    config_hash: str
    resolved: dict  # the variant's fully resolved experiment document (config.yaml)
    seed: int = 0  # this variant's seed (grid: {seed: [...]} gives each run its own)
    output_root: Path | None = None  # this variant's output_root (absolute)
    launcher: Any = None  # this variant's launcher component (config.yaml's launcher:)
    spec: StageSpec | None = None
    dep_keys: tuple[str, ...] = ()  # Plan keys of the runs named in ``deps``, same order
    dep_runs: tuple["Run", ...] = ()  # those runs, same order (markers.is_complete)
    external: bool = False  # a stage of another experiment file this plan reads from
    pinned: bool = False  # an external run known only by its directory and hash (a re-plan)

    @property
    def key(self) -> str:
        local = f"{self.variant}/{self.stage}"
        return f"{self.experiment}:{local}" if self.external else local

    @property
    def inputs(self) -> dict[str, str]:
        """Option key -> the file or folder read from another stage (its references)."""
        return {r.dotted: r.path for r in (self.spec.refs if self.spec else ())}


@dataclass
class Plan:
    """Every run of an experiment, in execution order; ``selected`` is what to launch."""

    name: str
    source: Path
    header: ExperimentHeader  # the first variant's header (name, report, launcher)
    runs: list[Run]
    selected: list[Run]
    profile: str | None = None
    notes: list[str] = field(default_factory=list)
    # the command line's planning part (experiment, overrides, --profile, --seeds, ...), as
    # `fcap-run status` / `report` take it to see the same runs; set by fcap-run
    command: list[str] = field(default_factory=list)
    # keys of selected runs that were not chosen but are read by chosen ones: another
    # experiment's runs, and once-stages under --only without --stages (--force spares them)
    implicit: frozenset[str] = frozenset()
    # command-line options of stages of an experiment file this one reads from, applied
    # there: {option: that file's name} (fcap-run table2.yaml stages.label.videos=...)
    taken: dict[str, str] = field(default_factory=dict)

    def forces(self, run: "Run", force: bool) -> bool:
        """Whether ``--force`` (``force``) restarts ``run``: a chosen run, not one in
        :attr:`implicit` (what the chosen runs read resumes, or stays complete)."""
        return force and run.key not in self.implicit

    def then(self, subcommand: str) -> str:
        """``fcap-run SUBCOMMAND <this plan's command line>``, quoted for a shell."""
        import shlex

        return shlex.join(["fcap-run", subcommand, *(self.command or [str(self.source)])])

    def get(self, variant: str, stage: str) -> Run:
        """The run of ``stage`` in ``variant`` (a ``once: true`` stage's single run)."""
        for want in (variant, ONCE_VARIANT):
            for run in self.runs:
                if not run.external and run.variant == want and run.stage == stage:
                    return run
        raise KeyError(f"{variant}/{stage}")

    def dependencies(self, run: Run) -> list[tuple[str, Run]]:
        """``(name, run)`` of each dependency of ``run`` (names as in ``ctx.deps``). A pinned
        run (another experiment's stage named by a resolved config.yaml, not planned again)
        is not among :attr:`runs`: the run itself carries it."""
        planned = {r.key: r for r in self.runs}
        return [(name, planned.get(dep.key, dep)) for name, dep in zip(run.deps, run.dep_runs,
                                                                       strict=True)]

    @property
    def out_dir(self) -> Path:
        """``<output_root>/<name>``: this experiment's folder (report.md, plots/)."""
        return next(r for r in self.runs if not r.external).run_dir.parents[1]

    def not_found(self) -> str:
        """'' when a run of this experiment has a run directory; else why none is found, for
        ``fcap-run status`` / ``report``: a relative ``output_root`` is read from the working
        folder, and from another folder every run looked pending (report wrote an empty
        table into a new folder there)."""
        own = self.own_runs()
        if not own or any(r.run_dir.exists() for r in own):
            return ""
        given = self.header.output_root
        others = sorted(p.name for p in self.out_dir.parent.glob("*/")
                        if p.is_dir() and p.name != self.name)
        if others:  # the right folder: other experiments ran there, this one did not yet
            why = f"no stage of it has run yet; {self.out_dir.parent} holds {', '.join(others)}"
        elif Path(given).expanduser().is_absolute():
            why = "no stage has run with this output_root"
        else:
            why = (f"output_root {given!r} is relative to the working folder {Path.cwd()}: run "
                   f"this from the folder fcap-run ran in, or give output_root=/absolute/path")
        return f"no run of {self.name} under {self.out_dir} ({why})"

    def one_run_config(self) -> str:
        """'' for an experiment file; for one run's resolved config.yaml (in the run's
        fcap-owned folder), why the experiment's report is not written from it: it would
        replace the report of every variant by one with this variant's rows alone."""
        from fcap.experiment.markers import CONFIG
        from fcap.io import is_owned

        if self.source.name != CONFIG or not is_owned(self.source.parent):
            return ""
        return (f"{self.source} is the resolved config of one run "
                f"({', '.join(self.variants())}); "
                f"{self.out_dir / 'report.md'} reports every variant of {self.name} and is "
                "written from the experiment's file (fcap-run report EXPERIMENT.yaml, with the "
                "command line it ran with)")

    def own_runs(self) -> list[Run]:
        """The runs of this experiment file (without the other experiments' it reads)."""
        return [r for r in self.runs if not r.external]

    def variants(self) -> list[str]:
        return list(dict.fromkeys(r.variant for r in self.runs
                                  if r.variant != ONCE_VARIANT and not r.external))


def build_plan(path: str | Path, *, overrides: Sequence[str] = (), profile: str | None = None,
               only: Sequence[str] | None = None, stages: Sequence[str] | None = None,
               plugins: Sequence[str] = (), launcher: str | None = None,
               seeds: int | None = None, _chain: tuple[Path, ...] = (),
               _foreign: Sequence[str] = ()) -> Plan:
    """Load, expand and validate an experiment; raise one ConfigError for every problem.

    ``seeds``: repeat every variant with that many seeds (``--seeds``; ``seeds:`` in YAML).
    ``_foreign``: a referencing experiment's command-line options of stages it does not
    have; this file takes those of its own stages (``Plan.taken``).
    """
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
    # file, a variant or the command line means real data, never the generated world. A
    # command-line datasets.shapes_world.* tunes the tiny profile's world (left out here).
    probe = [kv for kv in cli if not profiles.tunes_world(*kv)]
    if profile is None and all(profiles.needs_default(merged, experiment=path)
                               for merged in _merged_variants(doc, origins, probe)):
        profile = profiles.DEFAULT
        notes.append(profiles.default_note(path))
    profile_path = str(profiles.find(profile, experiment=path)) if profile else None
    overlays = profiles.TaskOverlays()
    if profile:
        doc, overlays = profiles.apply(doc, origins, profile, experiment=path)
    for key, value in [kv for kv in cli if kv[0] == "seeds"]:  # seeds=N: what --seeds N does
        set_dotted(doc, key, value, source="command line", origins=origins)
    if seeds is not None:
        doc["seeds"] = seeds
        origins.record(seeds, "command line", "seeds")
    if launcher:
        doc["launcher"], dropped = _switch_launcher(doc.get("launcher") or {}, launcher)
        origins.record(doc["launcher"], "command line", "launcher")
        if dropped:
            notes.append(f"--launcher {launcher}: not using the {dropped}")

    # seed=K on the command line moves the whole experiment: 'seeds: N' then counts from K
    for key, value in [kv for kv in cli if kv[0] == "seed"]:
        set_dotted(doc, key, value, source="command line", origins=origins)
    base_seed = doc.get("seed", 0)  # once-stages run with it, whatever the variant's seed
    problems: list[Problem] = [*load_problems]
    # another experiment's stages are planned with this command line's shared settings
    # (datasets.root=..., model.*): the run it would be if started with that command line.
    # Not its stages, and not seed=K: its labels (a day of GPUs) are made once and reused.
    # Nor launcher.*: this plan's launcher runs them (launcher.profile=mycluster is not an
    # option of the other file's local launcher).
    flags = {k: v for k, v in FLAGS.items() if k not in task_fields(doc)}
    shared_cli = [o for o, (key, _) in zip(overrides, cli)
                  if not key.startswith("stages.") and key not in ("seed", "seeds", *flags)
                  and key.split(".")[0] not in (*EXPANDED, "launcher")]
    # (another experiment's stages, planned for a reference, may keep their own values)
    shadow = Shadowed(cli if not _chain else [])
    variant_sets = expand(doc, origins, problems)
    refused = {p.key for p in problems} & {"seeds"}  # said once: not again by the header's check
    base_doc = {k: v for k, v in doc.items() if k not in ("variants", "grid", *refused)}
    every_stage = _stage_names(base_doc, variant_sets)
    # An option of a stage this file does not have goes to the experiments it reads from
    # (stages.label.videos=howto100m on table2.yaml: Table 1's label stage), and is an
    # error only if none of them has that stage either.
    foreign = [o for o, (key, _) in zip(overrides, cli)
               if _stage_of(key) not in (None, *every_stage)]
    mine = [kv for o, kv in zip(overrides, cli) if o not in foreign]
    taken = [o for o in _foreign if _stage_of(parse_override(o)[0]) in every_stage]
    cli = [*mine, *(parse_override(o) for o in taken)]
    externals = _Externals(profile_path, (*_chain, path.resolve()), shared_cli,
                           foreign=[*foreign, *(o for o in _foreign if o not in taken)])
    problems += _unknown_stage_overrides(cli, every_stage)
    problems += [Problem("command line", key, (
        "variants and grids are the experiment file's: on the command line, pick variants with "
        "--only NAME, repeat them with --seeds N (or seeds=N), or set an option for every "
        "variant (e.g. optimizer.lr=1e-3)")) for key, _ in cli if key.split(".")[0] in EXPANDED]
    problems += [Problem("command line", key, "a flag of fcap-run, not a config key: write "
                         + flags[key].format(value=value)) for key, value in cli if key in flags]
    header, runs = None, []
    listless: dict[str, str] = {}  # an index override -> a variant without its list
    indexed: set[str] = set()  # index overrides some variant took
    for vname, vset in variant_sets:
        vdoc, vorigins = copy.deepcopy(base_doc), origins.copy()
        try:
            for key, value in vset:
                set_dotted(vdoc, key, value, source=f"variant {vname}", origins=vorigins)
            # a stage the variant adds gets the profile's task overlay, like the file's stages
            added = set(vdoc.get("stages") or {}) - set(base_doc.get("stages") or {})
            overlays.apply(vdoc, vorigins, only=added)
            for key, value in cli:
                if key in ("seed", "seeds") or key.split(".")[0] in EXPANDED or key in flags:
                    continue  # applied to the whole experiment above, or refused
                if _stage_of(key) not in (None, *(vdoc.get("stages") or {})):
                    continue  # an option of a stage only other variants have (shuffled_frames)
                if indexes_absent_list(vdoc, key):  # a list only other variants have
                    listless.setdefault(key, vname)
                    continue
                indexed.add(key)
                set_dotted(vdoc, key, value, source="command line", origins=vorigins)
            shadow.add(vdoc)
            _absolute_data_root(vdoc)
            label_inputs.share_collection(vdoc, vorigins)
            off = (profiles.world_off_problem(vdoc, cli, experiment=path)
                   or label_inputs.world_label_problem(vdoc, vorigins))
            if off is not None:
                raise ConfigError(off)
        except ConfigError as err:
            problems.extend(err.problems)
            continue
        resolver = VariantResolver(vdoc, vorigins, vname, path, problems, externals)
        h = resolver.header()
        specs = resolver.stages(h) if h is not None else None
        header = header or h
        if h is not None and specs is not None:
            _add_runs(runs, _make_runs(h, vname, specs, resolver, path, externals,
                                       base_seed=base_seed), vname, problems)
    problems += [Problem("command line", key, f"indexes a list that no variant has (variant "
                                              f"{vname} has nothing at "
                                              f"'{key.split('[', 1)[0]}')")
                 for key, vname in listless.items() if key not in indexed]
    reached = externals.taken()
    problems += _unknown_stage_overrides([parse_override(o) for o in foreign if o not in reached],
                                         every_stage, also_read=externals.files())
    problems = list(dict.fromkeys([*problems, *shadow.problems()]))
    notes.extend(shadow.notes())
    notes.extend(f"{o}: applied to {name}, whose stage this experiment reads"
                 for o, name in reached.items() if o in foreign)
    if problems or header is None:
        raise ConfigError(problems or [Problem(str(path), "", "no runs")],
                          title=f"invalid experiment {path}")
    runs = [*externals.runs(), *runs]
    selected, implicit = _select(runs, only, stages, path)
    return Plan(name=header.name, source=path, header=header, runs=runs, selected=selected,
                profile=profile, notes=notes, implicit=implicit,
                taken={**{o: path.name for o in taken}, **reached})


def _absolute_data_root(vdoc: dict) -> None:
    """A relative ``datasets.root`` is the working folder's, as ``output_root`` is: made
    absolute here, so every stage (a SLURM job, a rerun of its config.yaml from elsewhere)
    reads the same folder, and its config hash names that folder."""
    datasets = vdoc.get("datasets")
    root = datasets.get("root") if isinstance(datasets, dict) else None
    if isinstance(root, str) and root and not os.path.isabs(os.path.expanduser(root)):
        datasets["root"] = os.path.abspath(root)


def _stage_of(key: str) -> str | None:
    """The stage an override sets an option of (``stages.X.k...`` -> X), else None: a whole
    stage (``stages.X={...}``) or a key outside ``stages.``."""
    parts = key.split(".")
    return parts[1] if len(parts) >= 3 and parts[0] == "stages" else None


EXPANDED = ("variants", "grid")  # expanded into variants before the command line applies
# key=value words that are fcap-run flags (no config has such a top-level key)
FLAGS = {"profile": "--profile {value}", "only": "--only {value}", "plugin": "--plugin {value}",
         "force": "--force", "dry_run": "--dry-run", "dry-run": "--dry-run", "debug": "--debug",
         "quiet": "--quiet"}


def _switch_launcher(block: dict, name: str) -> tuple[dict, str]:
    """``--launcher NAME``: the launcher block with that name, and what it left out ('' for
    nothing). The file's or profile's options of another launcher (the tiny profile's local
    ``jobs``) do not apply to NAME and are dropped; a block for NAME keeps its own."""
    if not isinstance(block, dict) or block.get("name", DEFAULT_LAUNCHER) == name:
        return deep_merge(block if isinstance(block, dict) else {}, {"name": name}), ""
    other = {k: v for k, v in block.items() if k != "name"}
    if not other:
        return {"name": name}, ""
    keys = ", ".join(f"{k}: {v}" for k, v in other.items())
    return {"name": name}, f"{block.get('name', DEFAULT_LAUNCHER)} launcher's options ({keys})"


def _stage_names(base_doc: dict, variant_sets: list) -> set[str]:
    """The stages of the file and those its variants add (``stages.X: {...}`` in a variant)."""
    stages = base_doc.get("stages")
    names = set(stages) if isinstance(stages, dict) else set()
    for _, vset in variant_sets:
        names |= {key.split(".")[1] for key, _ in vset if key.startswith("stages.")}
    return names


def _unknown_stage_overrides(cli: list, every_stage: set[str],
                             also_read: Sequence[str] = ()) -> list[Problem]:
    """A command-line option of a stage no variant has (a typo in its name), nor any
    experiment file this one reads from (``also_read``, their names)."""
    known = sorted(every_stage)
    nor = f" (nor in {', '.join(also_read)}, which it reads from)" if also_read else ""
    problems = []
    for key, _ in cli:
        stage = _stage_of(key)
        if stage is not None and stage not in every_stage:
            problems.append(Problem("command line", key, f"no stage '{stage}' in any variant"
                                    f"{nor}{suggest(stage, known)} stages: {', '.join(known)}"))
    return problems


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


class _Externals:
    """Stages of other experiment files that this plan reads (``{from: other.yaml:stage}``).

    Each file is planned once, with this plan's profile, ``output_root`` and command-line
    overrides outside ``stages.`` but ``seed`` (``datasets.root=/data`` reaches its label
    stage; ``seed=1`` does not relabel); the
    referenced run and the runs it depends on join this plan (complete ones are
    skipped by the launchers, so nothing is labelled twice). A reference that
    carries ``hash`` and ``run_dir`` (a resolved config.yaml) is pinned to that
    run instead of re-planning the other file.
    """

    def __init__(self, profile_path: str | None, chain: tuple[Path, ...],
                 overrides: Sequence[str] = (), *, foreign: Sequence[str] = ()) -> None:
        self.profile_path, self.chain, self.overrides = profile_path, chain, list(overrides)
        self.foreign = list(foreign)  # options of stages the referencing file does not have
        self.plans: dict[tuple[str, str], Plan] = {}
        self.found: dict[str, Run] = {}  # key -> run, in insertion order

    def __call__(self, ref: refs.Ref, raw: dict, at: str, output_root: str) -> Run:
        if raw.get("hash") and raw.get("run_dir"):
            run_dir = Path(raw["run_dir"])  # <output_root>/<name>/<variant>/<stage>
            run = Run(experiment=run_dir.parents[1].name, variant=run_dir.parent.name,
                      stage=ref.stage, task=str(raw.get("task") or ""), cfg=None, init_from=None,
                      deps=(), resources=Resources(), run_dir=run_dir,
                      config_hash=str(raw["hash"]), resolved={}, external=True, pinned=True)
            self.found.setdefault(run.key, run)
            return run
        other = Path(ref.experiment)
        if other in self.chain:
            raise ValueError("experiment reference cycle: " + " -> ".join(
                str(p) for p in (*self.chain, other)))
        if not other.is_file():
            raise ValueError(f"no experiment file {other}")
        plan = self.plans.get((str(other), output_root))
        if plan is None:
            plan = build_plan(other, profile=self.profile_path, _chain=self.chain,
                              overrides=[*self.overrides, f"output_root={output_root}"],
                              _foreign=self.foreign)
            self.plans[(str(other), output_root)] = plan
        matches = [r for r in plan.runs if r.stage == ref.stage and not r.external
                   and (ref.variant is None or r.variant == ref.variant)]
        if len(matches) != 1:
            known = ", ".join(sorted({r.key for r in plan.runs if not r.external}))
            why = "no run" if not matches else "several runs (name one: file.yaml:VARIANT/stage)"
            raise ValueError(f"{other.name} has {why} of stage '{ref.stage}'"
                             + (f" in variant '{ref.variant}'" if ref.variant else "")
                             + f"; runs: {known}")
        return self._add(plan, matches[0])

    def _add(self, plan: Plan, run: Run) -> Run:
        """Add ``run`` of ``plan`` (and what it depends on), keyed as another experiment's."""
        key = run.key if run.external else f"{run.experiment}:{run.variant}/{run.stage}"
        if key in self.found:
            return self.found[key]
        deps = [self._add(plan, dep) for _name, dep in plan.dependencies(run)]
        added = dataclasses.replace(run, external=True, dep_keys=tuple(d.key for d in deps),
                                    dep_runs=tuple(deps))
        self.found[added.key] = added
        return added

    def runs(self) -> list[Run]:
        return [r for r in self.found.values() if not r.pinned]

    def taken(self) -> dict[str, str]:
        """The foreign options the planned files took: ``{option: file name}``."""
        return {o: name for plan in self.plans.values() for o, name in plan.taken.items()}

    def files(self) -> list[str]:
        return list(dict.fromkeys(Path(other).name for other, _ in self.plans))

    def get(self, key: str) -> Run:
        return self.found[key]


def _make_runs(header: ExperimentHeader, vname: str, specs: list[StageSpec],
               resolver: VariantResolver, path: Path, externals: _Externals, *,
               base_seed: Any = 0) -> list[Run]:
    from fcap.plugins import resolve_plugin_paths

    resolved_stages = {}
    for spec in specs:
        body = schema.to_dict(spec.cfg) if spec.cfg is not None else {}
        for ref in spec.refs:  # config.yaml shows the reference and the path it read
            refs.set_at(body, ref.key, ref.as_yaml())
        stage_doc: dict[str, Any] = {"task": spec.task}
        if spec.init_from is not None:
            stage_doc["init_from"] = spec.init_from
        if spec.after:
            stage_doc["after"] = list(spec.after)
        if spec.once:
            stage_doc["once"] = True
        stage_doc["resources"] = schema.to_dict(spec.resources)
        stage_doc.update(body)
        resolved_stages[spec.name] = stage_doc
    resolved = {
        "name": header.name, "variant": vname, "description": header.description,
        "output_root": str(resolver.out_dir.parent), "seed": header.seed,
        "plugins": resolve_plugin_paths(header.plugins, relative_to=path.resolve().parent),
        "launcher": schema.to_dict(header.launcher), "report": schema.to_dict(header.report),
        "stages": resolved_stages,
    }
    hashes: dict[str, str] = {}
    keys: dict[str, str] = {}
    made: dict[str, Run] = {}
    runs = []
    for spec in specs:
        body = copy.deepcopy(rerun.hashed(resolved_stages[spec.name]))
        for ref in spec.refs:  # the hash sees the reference, not the output_root-dependent path
            refs.set_at(body, ref.key, ref.hash_form())
        dep_keys, dep_runs, dep_hashes = [], [], {}
        for dep in spec.deps:
            ext = next((r for r in spec.refs if r.experiment and r.dep_name == dep), None)
            if ext is not None:
                run = externals.get(ext.run_key)  # set by the resolver
                dep_keys.append(run.key)
                dep_runs.append(run)
                dep_hashes[dep] = run.config_hash
            else:
                dep_keys.append(keys[dep])
                dep_runs.append(made[dep])
                dep_hashes[dep] = hashes[dep]
        # A once-stage is shared by every variant, repeated seeds too: it runs with the
        # experiment's seed, so 'seeds: N' repeats what follows it, not the pseudolabels.
        seed = base_seed if spec.once else header.seed
        blob = json.dumps({"stage": body, "deps": dep_hashes, "seed": seed},
                          sort_keys=True, default=str)
        hashes[spec.name] = hashlib.sha256(blob.encode()).hexdigest()[:16]
        variant = ONCE_VARIANT if spec.once else vname
        keys[spec.name] = f"{variant}/{spec.name}"
        made[spec.name] = Run(
            experiment=header.name, variant=variant, stage=spec.name, task=spec.task,
            cfg=spec.cfg, init_from=spec.init_from, deps=spec.deps, resources=spec.resources,
            run_dir=resolver.run_dir(spec.name), config_hash=hashes[spec.name],
            resolved=resolved, seed=seed, output_root=resolver.out_dir.parent,
            launcher=header.launcher, spec=spec, dep_keys=tuple(dep_keys),
            dep_runs=tuple(dep_runs))
        runs.append(made[spec.name])
    return runs


def _add_runs(runs: list[Run], new: list[Run], vname: str, problems: list[Problem]) -> None:
    """Append a variant's runs; a ``once: true`` stage is kept once and must not vary."""
    for run in new:
        if run.variant == ONCE_VARIANT:
            first = next((r for r in runs if r.variant == ONCE_VARIANT and r.stage == run.stage), None)
            if first is not None:
                # the whole block, run options too: a variant's batch_size would be ignored
                if (first.config_hash, first.resolved["stages"][run.stage]) != (
                        run.config_hash, run.resolved["stages"][run.stage]):
                    key = f"stages.{run.stage}.once"
                    problems.append(Problem("variant " + vname, key, (
                        f"stage '{run.stage}' runs once for all variants (once: true), but variant "
                        f"'{vname}' changes its config; drop 'once' or the variant's override")))
                continue
        runs.append(run)


def _select(runs: list[Run], only, stages, path: Path) -> tuple[list[Run], frozenset[str]]:
    """The runs to launch, and which of them are there only because chosen ones read them."""
    problems = []
    local = [r for r in runs if not r.external]
    variants = list(dict.fromkeys(r.variant for r in local if r.variant != ONCE_VARIANT))
    variants += [g for g in dict.fromkeys(seed_group(v) for v in variants) if g not in variants]
    names = list(dict.fromkeys(r.stage for r in local))
    only, stages = _known_names(only, variants), _known_names(stages, names)
    for flag, what, wanted, known in (("--only", "variant", only, variants),
                                      ("--stages", "stage", stages, names)):
        for w in wanted or ():
            if w not in known:
                sep = "; " if any("," in k for k in known) else ", "  # asr,seed=0; asr,seed=1
                problems.append(Problem("command line", flag, f"no such {what} "
                                        f"'{w}'{suggest(w, known)} known: {sep.join(known)}"))
    if problems:
        raise ConfigError(problems, title=f"invalid selection for {path}")
    by_key = {r.key: r for r in runs}
    picked = {r.key for r in local if r.variant != ONCE_VARIANT
              and (not only or r.variant in only or seed_group(r.variant) in only)}
    # once-stages (labelling HowTo100M: 64 GPU-days at paper scale) run for every variant,
    # but under --only only when a chosen variant's stages read them
    once = {r.key for r in local if r.variant == ONCE_VARIANT}
    if only:
        once = _closure([k for key in picked for k in by_key[key].dep_keys], by_key, once)
    pool = picked | once
    chosen = [r for r in local if r.key in pool and (not stages or r.stage in stages)]
    if not chosen:
        offered = list(dict.fromkeys(r.stage for r in local if r.key in pool))
        unread = [r.stage for r in local if r.variant == ONCE_VARIANT and r.key not in once]
        raise ConfigError(Problem("command line", "--stages", (
            f"selects no run of variant(s) {', '.join(only or ())}: their stages are "
            f"{', '.join(offered) or '(none)'}"
            + (f" (once-stages {', '.join(unread)} are not read by them: select those with "
               f"--stages alone)" if unread else ""))), title=f"invalid selection for {path}")
    # Another experiment's runs are launched when a chosen run needs them (done ones are skipped).
    needed = _closure([k for r in chosen for k in r.dep_keys], by_key,
                      {r.key for r in runs if r.external})
    implicit = needed | (once if only and not stages else set())
    return [r for r in runs if r.key in needed] + chosen, frozenset(implicit)


def _known_names(parts: Sequence[str] | None, known: list[str]) -> list[str] | None:
    """The comma-split ``--only`` / ``--stages`` parts joined back where they spell a name
    with commas (``asr,seed=0``, a grid's ``name=scalar,lr=0.001``): longest first."""
    if not parts:
        return parts
    out, i = [], 0
    while i < len(parts):
        j = next((j for j in range(len(parts), i + 1, -1) if ",".join(parts[i:j]) in known), i + 1)
        out.append(",".join(parts[i:j]))
        i = j
    return out


def _closure(keys: list[str], by_key: dict[str, Run], among: set[str]) -> set[str]:
    """The runs of ``among`` that ``keys`` name, with those they depend on in turn."""
    out: set[str] = set()
    while keys:
        key = keys.pop()
        if key in among and key not in out:
            out.add(key)
            keys.extend(by_key[key].dep_keys)
    return out
