"""References to another stage's output: ``{from: STAGE, output: NAME}`` in any stage option.

Syntax (any option of a stage, at any depth, e.g. inside a mixture's children)::

    pseudolabels: {from: merge}                         # merge's first output
    pseudolabels: {from: merge, output: pseudolabels}   # a named output
    pseudolabels: {from: table1.yaml:merge}             # a stage of another experiment file
    adapters: {from: other.yaml:laion/pretrain}         # ... of one of its variants

Outputs are declared by each task's registry entry (``fcap-run --list task``).
The planner replaces a reference by the output's path, adds the producer as a
dependency (no ``after:`` needed) and chains the consumer's config hash on the
producer's. The resolved config.yaml keeps the reference with the ``path`` it
resolved to, so a re-plan from it gives the same run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

REF_KEYS = {"from", "output", "path", "hash", "run_dir", "task"}
Key = tuple  # where in a stage body: ("data", "children", 1, "source", "pseudolabels")


@dataclass(frozen=True)
class Ref:
    """One reference of a stage, resolved to a path by the planner."""

    key: Key
    experiment: str | None  # another experiment file (absolute), None: this experiment
    variant: str | None  # of another experiment (None: its only run of ``stage``)
    stage: str
    output: str | None  # None: the producer task's first output
    path: str = ""  # the file or folder read (set when resolved)
    # another experiment's producer run (set when resolved): plan key, hash, directory, task
    run_key: str = ""
    hash: str = ""
    run_dir: str = ""
    task: str = ""

    @property
    def dotted(self) -> str:
        return dotted(self.key)

    @property
    def dep_name(self) -> str:
        """The dependency's name in ``ctx.deps``: the stage, or ``file.yaml:[variant/]stage``."""
        if self.experiment is None:
            return self.stage
        where = f"{self.variant}/{self.stage}" if self.variant else self.stage
        return f"{Path(self.experiment).name}:{where}"

    def as_yaml(self) -> dict:
        """What config.yaml holds: the reference and the path it resolved to.

        Another experiment's producer is also pinned by hash and directory, so a re-plan
        from config.yaml (a SLURM job, a torchrun rank) reads the same run.
        """
        origin = f"{self.experiment}:" if self.experiment else ""
        where = f"{self.variant}/{self.stage}" if self.variant else self.stage
        out = {"from": origin + where, "output": self.output, "path": self.path}
        if self.experiment:
            out.update(hash=self.hash, run_dir=self.run_dir, task=self.task)
        return out

    def hash_form(self) -> dict:
        """What the config hash sees (paths depend on output_root; the producer's hash is chained)."""
        return {"from": self.dep_name, "output": self.output}


def dotted(key: Key) -> str:
    """("data", "children", 1, "source") -> "data.children[1].source"."""
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in key).lstrip(".")


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and "from" in value and set(value) <= REF_KEYS


def find(body: Any, key: Key = ()) -> Iterator[tuple[Key, dict]]:
    """Every reference in a stage body, with its key path (depth-first)."""
    if is_ref(body):
        yield key, body
    elif isinstance(body, dict):
        for k, v in body.items():
            yield from find(v, (*key, k))
    elif isinstance(body, list):
        for i, v in enumerate(body):
            yield from find(v, (*key, i))


def parse(key: Key, value: dict, *, relative_to: Path) -> Ref:
    """A reference mapping -> :class:`Ref` (unresolved); ValueError names what is wrong."""
    text, output = value.get("from"), value.get("output")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"'from' must name a stage ('merge') or 'file.yaml:stage', got {text!r}")
    if output is not None and not isinstance(output, str):
        raise ValueError(f"'output' must be an output name, got {output!r}")
    experiment, _, where = text.rpartition(":") if ":" in text else ("", "", text)
    variant, _, stage = where.rpartition("/")
    if experiment:
        path = Path(experiment).expanduser()
        path = path if path.is_absolute() else relative_to / path
        experiment = str(path.resolve())
    elif variant:
        raise ValueError(f"'from: {text}': a stage of this experiment is named without a variant "
                         "(each variant reads its own run of that stage)")
    return Ref(key=key, experiment=experiment or None, variant=variant or None, stage=stage,
               output=output)


def set_at(doc: Any, key: Key, value: Any) -> None:
    """Replace the value at ``key`` in nested dicts/lists."""
    node = doc
    for k in key[:-1]:
        node = node[k]
    node[key[-1]] = value
