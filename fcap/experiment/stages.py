"""One variant's document -> its header and typed stage specs, validated, in run order.

Each stage block is merged over the shared top-level blocks its task takes,
its references (``{from: ...}``, fcap/experiment/refs.py) are replaced by the
producers' output paths, and the result is validated against the task's
config dataclass. Problems are collected, never raised one at a time.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fcap.config import schema
from fcap.config.errors import ConfigError, Problem
from fcap.config.loader import Origins, deep_merge, set_dotted
from fcap.experiment import label_inputs, local_paths, refs
from fcap.experiment.spec import (EXPERIMENT_KEYS, ONCE_VARIANT, STAGE_KEYS, ExperimentHeader,
                                  Resources, name_problem)
from registry import TASKS, suggest


@dataclass(frozen=True)
class StageSpec:
    """A validated stage of one variant."""

    name: str
    task: str
    cfg: Any  # instance of the task's config dataclass (None: a task without options)
    resources: Resources
    once: bool = False  # run once for all variants (run directory all_variants/)
    init_from: str | None = None  # stage whose adapters this one starts from
    after: tuple[str, ...] = ()
    refs: tuple[refs.Ref, ...] = ()  # resolved references to other stages' outputs

    @property
    def deps(self) -> tuple[str, ...]:
        """Dependency names in order: init_from, after, then referenced stages (unique)."""
        names = [self.init_from] if self.init_from else []
        names += [*self.after, *(r.dep_name for r in self.refs)]
        return tuple(dict.fromkeys(names))

    @property
    def local_deps(self) -> tuple[str, ...]:
        external = {r.dep_name for r in self.refs if r.experiment}
        return tuple(d for d in self.deps if d not in external)


# (ref, its raw mapping, consumer key, output_root) -> the producer Run of another experiment
ExternalResolver = Callable[[refs.Ref, dict, str, str], Any]


class VariantResolver:
    """Resolves the stages of one variant document (see the module docstring)."""

    def __init__(self, doc: dict, origins: Origins, vname: str, path: Path,
                 problems: list[Problem], external: ExternalResolver) -> None:
        self.doc, self.origins, self.vname, self.path = doc, origins, vname, path
        self.problems, self.external = problems, external
        self.used: set[str] = set()  # shared blocks some stage takes
        self.offered: set[str] = set()  # every config field of the tasks used
        self.labels: list[str] = []  # the label stages (label_inputs.py)

    def header(self) -> ExperimentHeader | None:
        data = {k: self.doc[k] for k in EXPERIMENT_KEYS if k in self.doc and k != "stages"}
        data.pop("variant", None)
        return schema.collect(ExperimentHeader, data, source_of=self.origins, key="",
                              problems=self.problems)

    def stages(self, header: ExperimentHeader) -> list[StageSpec] | None:
        """The variant's stages in dependency order, or None after recording problems."""
        stages_doc = self.doc.get("stages")
        if not isinstance(stages_doc, dict) or not stages_doc:
            self._problem("stages", "expected a non-empty mapping: stage name -> {task: ..., ...}")
            return None
        self.blocks = {str(k): v for k, v in stages_doc.items()}
        self.out_dir = _out_root(header) / header.name
        shared = {k: v for k, v in self.doc.items() if k not in EXPERIMENT_KEYS}
        specs = {}
        for sname, block in self.blocks.items():
            spec = self._stage(sname, block, shared)
            if spec is not None:
                specs[sname] = spec
        self._unused_shared(shared)
        self._once_deps(specs)
        order = _toposort(specs, list(self.blocks), self.origins, self.problems)
        if len(specs) != len(self.blocks) or order is None:
            return None
        return [specs[n] for n in order]

    def run_dir(self, stage: str) -> Path:
        block = self.blocks.get(stage)
        once = isinstance(block, dict) and block.get("once") is True
        return self.out_dir / (ONCE_VARIANT if once else self.vname) / stage

    # -- one stage ----------------------------------------------------------------------
    def _stage(self, sname: str, block: Any, shared: dict) -> StageSpec | None:
        key = f"stages.{sname}"
        bad_name = name_problem(sname)
        if bad_name:
            self._problem(key, f"a stage name {bad_name}")
        if not isinstance(block, dict):
            self._problem(key, f"expected a mapping with 'task:', got {block!r}")
            return None
        task = block.get("task")
        if task is None:
            self._problem(key, f"missing required key 'task'; known tasks: {', '.join(TASKS.names())}",
                          at=f"{key}.task")
            return None
        if task not in TASKS:
            self._problem(f"{key}.task", TASKS.unknown_message(task))
            return None
        entry = TASKS.get(task)
        fields = {f.name for f in dataclasses.fields(entry.config)} if entry.config else set()
        self.offered.update(fields)
        if task == label_inputs.TASK:  # the planner hands it datasets.root / shapes_world
            self.labels.append(sname)
        merged, from_shared = {}, set()
        for k in shared:
            if k in fields:
                merged[k] = shared[k]
                self.used.add(k)
                if k not in block:
                    from_shared.add(k)
        body = {k: v for k, v in block.items() if k not in STAGE_KEYS}
        merged = deep_merge(merged, body)
        found = self._refs(sname, merged, from_shared)

        def source_of(dotted: str) -> str:
            return self.origins(_shared_key(dotted, key, from_shared))

        local: list[Problem] = []
        cfg = schema.collect(entry.config, merged, source_of=source_of, key=key, problems=local) \
            if entry.config else None
        absolute = local_paths.made_absolute(cfg) if cfg is not None else {}
        if absolute:  # a checkpoint folder relative to this folder: config.yaml names it whole
            merged = copy.deepcopy(merged)
            for dotted, path in absolute.items():
                set_dotted(merged, dotted, path, source="plan", origins=Origins("plan"))
            cfg = schema.collect(entry.config, merged, source_of=source_of, key=key,
                                 problems=local)
        if entry.config is None and body:
            local.extend(Problem(self.origins(f"{key}.{k}"), f"{key}.{k}",
                                 f"task '{task}' takes no options") for k in body)
        # A mistake inside a shared block is reported at the key where it was written.
        self.problems.extend(Problem(p.source, _shared_key(p.key, key, from_shared), p.message)
                             for p in local)
        resources = schema.collect(Resources, block.get("resources") or {}, source_of=self.origins,
                                   key=f"{key}.resources", problems=self.problems)
        after = block.get("after") or []
        if not isinstance(after, list):
            self._problem(f"{key}.after", "expected a list of stage names")
            after = []
        once = block.get("once", False)
        if not isinstance(once, bool):
            self._problem(f"{key}.once", f"expected bool (true/false), got {once!r}")
            return None
        if (entry.config and cfg is None) or resources is None or bad_name or found is None:
            return None
        shards = getattr(cfg, "num_shards", None)
        if resources.array is not None and shards is not None and resources.array != shards:
            self._problem(f"{key}.resources.array", (
                f"{resources.array} array elements for {shards} shards ({key}.num_shards): one "
                f"element labels one shard; set both to the same number"))
            return None
        init_from = block.get("init_from")
        if getattr(entry.config, "NEEDS_ADAPTERS", False) and init_from is None \
                and not getattr(cfg, "adapters", None):
            self._problem(key, f"task '{task}' starts from trained adapters: give the stage "
                               "'init_from: STAGE' (e.g. init_from: pretrain) or 'adapters: DIR' "
                               "(a folder save_adapters wrote); task caption_pretrain trains "
                               "adapters from their initialisation")
            return None
        return StageSpec(name=sname, task=task, cfg=cfg, resources=resources, once=once,
                         init_from=None if init_from is None else str(init_from),
                         after=tuple(str(a) for a in after), refs=tuple(found))

    def _refs(self, sname: str, merged: dict, from_shared: set[str]) -> list[refs.Ref] | None:
        """Replace each reference in ``merged`` by its path; None if one is bad."""
        out, ok = [], True
        for where, value in list(refs.find(merged)):
            at = _shared_key(f"stages.{sname}.{refs.dotted(where)}", f"stages.{sname}", from_shared)
            try:
                ref = refs.parse(where, value, relative_to=self.path.resolve().parent)
                ref = self._producer(ref, value, sname, at)
            except (ValueError, ConfigError) as err:
                msg = "; ".join(p.message for p in err.problems) if isinstance(err, ConfigError) \
                    else str(err)
                self._problem(at, f"bad reference {_short(value)}: {msg}")
                refs.set_at(merged, where, "")  # reported once: not again as a wrong type
                ok = False
                continue
            refs.set_at(merged, where, ref.path)
            out.append(ref)
        return out if ok else None

    def _producer(self, ref: refs.Ref, value: dict, sname: str, at: str) -> refs.Ref:
        """``ref`` with its producer run and the output path filled in; ValueError if unknown."""
        if ref.experiment is not None:
            run = self.external(ref, value, at, str(self.out_dir.parent))
            ref = dataclasses.replace(ref, run_key=run.key, hash=run.config_hash,
                                      run_dir=str(run.run_dir), task=run.task)
            if run.pinned:  # a resolved config.yaml: the path it recorded
                return dataclasses.replace(ref, path=str(value.get("path") or run.run_dir))
            run_dir, task = run.run_dir, run.task
        else:
            block = self.blocks.get(ref.stage)
            if ref.stage == sname or not isinstance(block, dict) or block.get("task") not in TASKS:
                others = [s for s in self.blocks if s != sname]
                raise ValueError(f"no stage '{ref.stage}' to read from"
                                 f"{suggest(ref.stage, others)} stages: {', '.join(others) or '(none)'}")
            run_dir, task = self.run_dir(ref.stage), block["task"]
        entry = TASKS.get(task)
        outputs = ", ".join(n for n, _ in entry.outputs) or "(none)"
        try:
            name, rel = entry.output_path(ref.output)
        except KeyError:
            wanted = f"no output '{ref.output}'" if ref.output else "no outputs"
            raise ValueError(f"stage '{ref.stage}' (task {task}) has {wanted}; outputs: "
                             f"{outputs}") from None
        return dataclasses.replace(ref, output=name, path=str(Path(run_dir) / rel))

    # -- checks across stages -------------------------------------------------------------
    def _unused_shared(self, shared: dict) -> None:
        if "datasets" not in self.used and self.labels and isinstance(shared.get("datasets"), dict):
            self._label_datasets(shared["datasets"])
            shared = {k: v for k, v in shared.items() if k != "datasets"}
        for key in shared:
            # A profile serves many experiments: its blocks that no stage here takes are unused.
            if key not in self.used and not self.origins(key).startswith("profile "):
                allowed = sorted(set(EXPERIMENT_KEYS) | self.offered)
                hint = suggest(key, allowed, otherwise="")
                self._problem(key, f"unknown top-level key '{key}'{hint} (it is not "
                                   "an experiment key and no stage's task takes it); allowed: "
                                   f"{', '.join(allowed)}")

    def _label_datasets(self, block: dict) -> None:
        """An experiment whose only reader of ``datasets:`` is its label stage(s): the keys
        the planner hands them (label_inputs.py) are used, any other reads nothing."""
        for sub in block:
            key = f"datasets.{sub}"
            if sub not in label_inputs.READS and not self.origins(key).startswith("profile "):
                self._problem(key, (
                    f"no stage of this experiment reads it: its label stage(s) "
                    f"({', '.join(self.labels)}) read datasets.{' and datasets.'.join(label_inputs.READS)} "
                    f"only"))

    def _once_deps(self, specs: dict[str, StageSpec]) -> None:
        for sname, spec in specs.items():
            for dep in spec.local_deps:
                if spec.once and dep in specs and not specs[dep].once:
                    self._problem(f"stages.{sname}", (
                        f"stage '{sname}' runs once for all variants (once: true) so it cannot "
                        f"depend on '{dep}', which runs per variant"))

    def _problem(self, key: str, message: str, *, at: str | None = None) -> None:
        self.problems.append(Problem(self.origins(key), at or key, message))


def _short(value: dict) -> str:
    return "{" + ", ".join(f"{k}: {value[k]}" for k in ("from", "output") if k in value) + "}"


def _out_root(header: ExperimentHeader) -> Path:
    out_root = Path(header.output_root).expanduser()
    return out_root if out_root.is_absolute() else Path.cwd() / out_root


def _shared_key(dotted: str, stage_key: str, from_shared: set[str]) -> str:
    if dotted.startswith(stage_key + "."):
        rest = dotted[len(stage_key) + 1:]
        if rest.split(".")[0].split("[")[0] in from_shared:
            return rest
    return dotted


def _toposort(specs: dict[str, StageSpec], names: list[str], origins: Origins,
              problems: list[Problem]) -> list[str] | None:
    ok = True
    for sname, spec in specs.items():
        for dep, dkey in [(spec.init_from, "init_from"), *((a, "after") for a in spec.after)]:
            if dep is not None and dep not in names:
                key = f"stages.{sname}.{dkey}"
                problems.append(Problem(origins(key), key, f"no stage '{dep}'{suggest(dep, names)} "
                                        f"stages: {', '.join(names)}"))
                ok = False
    if not ok:
        return None
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(n: str, chain: list[str]) -> bool:
        if state.get(n) == "done":
            return True
        if state.get(n) == "active":
            cycle = " -> ".join([*chain[chain.index(n):], n])
            problems.append(Problem(origins(f"stages.{n}"), f"stages.{n}",
                                    f"stage dependency cycle: {cycle}"))
            return False
        state[n] = "active"
        for dep in specs[n].local_deps if n in specs else ():
            if not visit(dep, [*chain, n]):
                return False
        state[n] = "done"
        order.append(n)
        return True

    for n in names:
        if n in specs and not visit(n, []):
            return None
    return order
