"""Before anything runs or is queued: the dataset folders and files the selected runs read exist.

``datasets.root`` itself is checked when the config is validated. The folders under it
are read only when a stage starts, which on a cluster is after the label array and the
queue: a missing ``laion/`` failed the LAION variants hours after submitting, and a
missing ``msrvtt/train_val_videodatainfo.json`` would fail fine-tuning after a day of
pretraining. Checked here for the selected runs only (``--only asr`` does not need
``laion/``):

- a data source's relative ``root:`` under ``datasets.root`` (``root: laion``), at any
  depth (a mixture's children), and, when it is there, the files and folders in it that
  the source opens by name for its config (``DataSource.needs``: MSR-VTT's annotation
  file of the split and ``videos/all``, MSVD's descriptions, mapping and clips, the ASR
  ``caption.json``, LAION's ``jsonl`` or at least one ``*.tar`` shard). When they are all
  there, the source's annotation files are read as its stage will read them
  (``DataSource.read_annotations``: MSR-VTT's info file, MSVD's descriptions, mapping and
  split lists), so a malformed one is named now. Large ones (ASR captions, a LAION jsonl)
  and the media themselves are the readers' business when the stage starts;
- a label stage's ``videos:`` given as a path (relative ones already resolved against
  ``datasets.root`` by the planner); one given as ``{from: STAGE}`` is another stage's
  output and is not there yet, and so are the pseudolabels pretraining reads;
- a frozen model's or the captioner's ``source:`` written as a path (``/ckpt/opt``): the
  folder must be there. A hub id (``facebook/opt-1.3b``) must be in the local Hugging Face
  cache or, unless ``HF_HUB_OFFLINE`` is set, on the hub (:mod:`fcap.models.hub`: one
  request per uncached id; one to be downloaded is a note on the console).

On the local launcher (:func:`check_java`, :func:`check_precision`): the Java tools the
scoring runs, and a training precision this machine's DeepSpeed accelerator has.

And (:func:`check_models`, a configuration error) the adapters go into layers the LM
has, read from its ``config.json`` when it is at hand (a folder, a downloaded hub id, the
tiny dims): the paper's 12..22 with a 12-layer OPT failed when pretraining built the model.

A missing folder or file with a near twin beside it (``MSRVTT/`` or ``MSR-VTT/`` for
``msrvtt/``, a name differing in case or punctuation, or nearly) names the twin.

A run already complete with this config (skipped unless ``--force``) reads nothing: a
finished pretraining does not need ``laion/`` to be evaluated again.

The tiny profile's world (``datasets.root`` null) is generated when a stage starts.
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Optional

from fcap.config.errors import ConfigError, Problem
from fcap.config.schema import Component
from fcap.experiment import markers, walk
from fcap.experiment.walk import data_sources, nodes
from registry import MODELS


def check_data(plan, *, force: bool = False) -> list[str]:
    """A DataError listing every missing folder or file, and every hub model that cannot be
    loaded, with the selected runs that read it; else the notes on hub models that the first
    stage loading them will download (for the console)."""
    from fcap.data.errors import DataError  # fcap.data loads torch: not at import
    from fcap.models import hub

    missing: dict[str, tuple[dict[str, None], Any]] = {}  # path -> (dotted keys, Needed)
    readers: dict[str, list[str]] = {}  # path -> run keys
    hub_ids: dict[tuple[str, Optional[str]], tuple[dict[str, None], list[str]]] = {}
    # (source, its options, root) -> (dotted keys, run keys) of annotations to read
    annotations: dict[tuple, tuple[dict[str, None], list[str], Any, str]] = {}
    for run in _runs_to_run(plan, force):
        gone_here = set()
        for key, needed in _needed(run):
            gone = needed.missing()
            if gone:
                gone_here.add(key.rsplit(".", 1)[0] if "." in key else key)
                missing.setdefault(gone, ({}, needed))[0][f"stages.{run.stage}.{key}"] = None
                if run.key not in readers.setdefault(gone, []):
                    readers[gone].append(run.key)
        for key, source, root in _rooted(run):
            if key in gone_here or not os.path.isdir(root):
                continue  # it or a file of it is missing: that is the problem to name
            keys, runs, _, _ = annotations.setdefault(
                (source.name, repr(source.cfg), root), ({}, [], source, root))
            keys[f"stages.{run.stage}.{key}"] = None
            if run.key not in runs:
                runs.append(run.key)
        for key, source, revision in _hub_sources(run.cfg):
            keys, runs = hub_ids.setdefault((source, revision), ({}, []))
            keys[f"stages.{run.stage}.{key}"] = None
            if run.key not in runs:
                runs.append(run.key)
    problems = [_problem(plan, gone, needed, list(keys), readers[gone])
                for gone, (keys, needed) in missing.items()]
    unusable: dict[str, tuple[dict[str, None], list[str]]] = {}  # error -> keys, runs
    for keys, runs, source, root in annotations.values():
        read = getattr(source.entry.obj, "read_annotations", None)  # a plugin's own class
        try:
            if read is not None:
                read(source.cfg, root)
        except DataError as err:  # one file read for two splits: one problem
            seen_keys, seen_runs = unusable.setdefault(str(err), ({}, []))
            seen_keys.update(keys)
            seen_runs.extend(r for r in runs if r not in seen_runs)
    problems += [Problem(str(plan.source), ", ".join(keys), (
        f"{err}; read by {_runs_text(runs)}: fix the file (its layout: fcap/data/README.md), "
        f"or leave those runs out (--only / --stages)")) for err, (keys, runs) in unusable.items()]
    notes = []
    for (source, revision), (keys, runs) in hub_ids.items():
        found = hub.check(source, revision=revision)
        if found.problem:
            problems.append(Problem(str(plan.source), ", ".join(keys), (
                f"{found.problem}; read by {_runs_text(runs)}")))
        elif found.note:
            notes.append(f"{', '.join(keys)}: {found.note}")
    if problems:  # a data error (exit 3), like the same folder missing when a stage starts
        what = "missing or unreadable data" if unusable else "missing data"
        raise DataError(str(ConfigError(problems, title=f"{what} for {plan.source}")))
    return notes


def _needed(run) -> Iterator[tuple[str, Any]]:
    """(dotted key, Needed) of what one run opens by name: each source's root and, when the
    root is there, the files in it (DataSource.needs); a label stage's videos folder."""
    from fcap.data.env import under_root
    from fcap.data.source import Needed
    from fcap.models.sources import missing_directory, what_to_give

    data_root = walk.data_root(run.cfg)
    resolve = lambda path: under_root(path, data_root) if path else path  # noqa: E731
    for key, source, root in _rooted(run):
        yield f"{key}.root", Needed("root", root, True, "")
        if os.path.isdir(root):
            for needed in source.entry.obj.needs(source.cfg, root, resolve):
                yield f"{key}.{needed.key}", needed
    videos = ((run.resolved.get("stages") or {}).get(run.stage) or {}).get("videos")
    if isinstance(videos, str) and videos:  # {from: STAGE} is another stage's output
        yield "videos", Needed("videos", os.path.expanduser(run.cfg.videos), True, "")
    for key, source, _, help_ in _model_sources(run.cfg):
        if missing_directory(source):  # a path, not a hub id
            path = os.path.abspath(os.path.expanduser(source))
            how = "" if os.path.exists(path) or not help_ else f"; {help_}"  # a file: said already
            yield key, Needed("source", path, True, what_to_give(source) + how)


def _rooted(run) -> Iterator[tuple[str, Any, str]]:
    """(dotted key, source component, its folder) of each data source of ``run`` whose
    relative ``root:`` lies under ``datasets.root``; an absolute root is the user's own
    folder, checked when the stage starts."""
    from fcap.data.env import is_relative, under_root

    data_root = walk.data_root(run.cfg)
    for key, source in data_sources(run.cfg) if data_root else ():
        if is_relative(source.cfg.root):
            yield key, source, under_root(source.cfg.root, data_root)


def _problem(plan, gone: str, needed, keys: list[str], runs: list[str]) -> Problem:
    shown = _runs_text(runs)
    tiny = "" if plan.profile else (  # e.g. pseudolabel_howto100m.yaml, which has no datasets:
        "; or try the experiment on the tiny profile's generated world: --profile tiny")
    where = "" if os.path.isabs(needed.path) else (
        f" in the working folder {os.getcwd()} (datasets.root is not set: set it to the folder "
        f"holding {needed.path}/, or give an absolute path{tiny})")
    what = f" ({needed.what})" if needed.what else ""
    fix = ("put the checkpoint there" if needed.key == "source"
           else "put the dataset there in its layout (fcap/data/README.md)")
    near = "" if needed.glob else _near(needed.path, needed.folder)
    return Problem(str(plan.source), ", ".join(keys), (
        f"no {gone}{where}{what}, read by {shown}: {fix}, or leave those runs "
        f"out (--only / --stages)" + (f"; did you mean {near}? (link or rename it to "
                                       f"{os.path.basename(needed.path)}, or set those keys to "
                                       f"it)" if near else "")))


def _near(path: str, folder: bool) -> str | None:
    """A folder (or file) beside ``path`` whose name differs only in case or punctuation, or
    nearly (``MSRVTT``, ``MSR-VTT`` for ``msrvtt``); None if there is none."""
    import difflib

    parent, name = os.path.split(os.path.abspath(path))
    try:
        entries = [e for e in os.listdir(parent)
                   if (os.path.isdir if folder else os.path.isfile)(os.path.join(parent, e))]
    except OSError:
        return None
    squash = lambda n: "".join(c for c in n.lower() if c.isalnum())  # noqa: E731
    same = [e for e in entries if squash(e) == squash(name)]
    close = same or difflib.get_close_matches(name.lower(), [e.lower() for e in entries], 1, 0.8)
    if not close:
        return None
    match = close[0] if same else next(e for e in entries if e.lower() == close[0])
    return os.path.join(parent, match)


def _runs_text(runs: list[str]) -> str:
    """The first three run keys and how many more."""
    return ", ".join(runs[:3]) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")


def _model_sources(cfg: Any) -> Iterator[tuple[str, str, Optional[str], str]]:
    """(dotted key, source, revision, help) of every model in a config (the frozen models'
    and the captioner's checkpoints: a hub id, a folder, or tiny); ``help`` is the model
    config's ``SOURCE_HELP``, how to make a checkpoint the hub does not have ('' if none)."""
    for key, value in nodes(cfg):
        if (isinstance(value, Component) and value.registry is MODELS
                and isinstance(getattr(value.cfg, "source", None), str)):
            yield (f"{key}.source", value.cfg.source, getattr(value.cfg, "revision", None),
                   getattr(value.cfg, "SOURCE_HELP", ""))


def check_models(plan, *, force: bool = False) -> None:
    """A ConfigError when the adapters of a selected, not-yet-complete run go into LM layers
    the LM does not have (``model.adapters.layers: [12, ..., 22]`` with a 12-layer OPT),
    read from the LM's config before anything runs; building the model says it again."""
    from fcap.models.config import ModelConfig
    from fcap.models.sources import num_layers

    found: dict[tuple[str, tuple[int, ...]], tuple[int, dict[str, None], list[str]]] = {}
    known: dict[tuple[str, Any], int | None] = {}
    for run, key, model in _to_run(plan, force, ModelConfig):
        source, tiny = getattr(model.lm.cfg, "source", None), getattr(model.lm.cfg, "tiny", None)
        if not isinstance(source, str):
            continue
        n = known.setdefault((source, tiny), num_layers(source, tiny))
        layers = tuple(model.adapters.layers)
        if n is not None and max(layers) >= n:
            _, keys, runs = found.setdefault((source, layers), (n, {}, []))
            keys[f"stages.{run.stage}.{key}.adapters.layers"] = None
            runs.append(run.key)
    if found:
        raise ConfigError([Problem(str(plan.source), ", ".join(keys), (
            f"{list(layers)} goes past the LM's last layer: {source!r} has {n} layers "
            f"(0..{n - 1}); read by {_runs_text(runs)}"))
            for (source, layers), (n, keys, runs) in found.items()],
            title=f"invalid model for {plan.source}")


def _runs_to_run(plan, force: bool) -> Iterator[Any]:
    """The selected runs that will run: not complete with this config, or forced (a run
    the command chose, under ``--force``)."""
    return (run for run in plan.selected
            if plan.forces(run, force) or not markers.is_complete(run))


def _to_run(plan, force: bool, kind: type) -> Iterator[tuple[Any, str, Any]]:
    """(run, dotted key, block) of every ``kind`` block in the runs that will run."""
    for run in _runs_to_run(plan, force):
        for key, block in nodes(run.cfg):
            if isinstance(block, kind):
                yield run, key, block


def _hub_sources(cfg: Any) -> Iterator[tuple[str, str, Optional[str]]]:
    """The models of a config given as hub ids (not ``tiny``, not a folder)."""
    from fcap.models.sources import is_hub_id

    for key, source, revision, _ in _model_sources(cfg):
        if is_hub_id(source):
            yield key, source, revision


def check_java(plan, *, force: bool = False) -> None:
    """A ConfigError when the selected, not-yet-complete runs score captions with Java tools
    (Stanford's PTB tokenizer, METEOR) and ``java`` is not on PATH. Run for the local launcher
    only: a cluster's compute nodes are not the machine that submits. A task config whose
    ``scores_captions()`` is False (training without validation) is not asked."""
    import shutil

    from fcap.eval.scoring import ScoringConfig, java_uses

    if shutil.which("java") is not None:
        return
    found: dict[str, tuple[list[str], list[str]]] = {}  # dotted key -> (Java uses, run keys)
    for run, key, scoring in _to_run(plan, force, ScoringConfig):
        uses = java_uses(scoring) if getattr(run.cfg, "scores_captions", lambda: True)() else []
        if uses:
            found.setdefault(f"stages.{run.stage}.{key}", (uses, []))[1].append(run.key)
    if found:
        raise ConfigError([_java_problem(plan, key, uses, runs)
                           for key, (uses, runs) in found.items()],
                          title=f"missing tool for {plan.source}")


def check_precision(plan, *, force: bool = False) -> None:
    """A ConfigError when a selected, not-yet-complete run trains in a precision this
    machine's DeepSpeed accelerator lacks (the paper profile's fp16 on a CPU: "Type fp16 is
    not supported on your device" when pretraining started). Local launcher only: a
    cluster's compute nodes are not the machine that submits."""
    from fcap.train.config import TrainConfig

    found: dict[str, tuple[dict[str, None], list[str]]] = {}  # precision -> (keys, run keys)
    for run, key, train in _to_run(plan, force, TrainConfig):
        if train.precision != "fp32":
            keys, runs = found.setdefault(train.precision, ({}, []))
            keys[f"stages.{run.stage}.{key}.precision"] = None
            runs.append(run.key)
    if not found:
        return
    from deepspeed.accelerator import get_accelerator  # only when a run asks for fp16 / bf16

    accel = get_accelerator()
    can = {"fp16": accel.is_fp16_supported(), "bf16": accel.is_bf16_supported()}
    problems = [Problem(str(plan.source), ", ".join(keys), (
        f"{precision} training is not supported by this machine's DeepSpeed accelerator "
        f"({accel.device_name()}), read by {_runs_text(runs)}: train.precision=fp32"
        + (" or bf16" if can["bf16"] else "") + ", or run it where a GPU is (--launcher slurm)"))
        for precision, (keys, runs) in found.items() if not can[precision]]
    if problems:
        raise ConfigError(problems, title=f"unsupported precision for {plan.source}")


def _java_problem(plan, key: str, uses: list[str], runs: list[str]) -> Problem:
    shown = _runs_text(runs)
    without = " and ".join(([f"{key}.tokenizer=simple"] if "tokenizer ptb" in uses else [])
                           + ([f"no meteor in {key}.metrics"] if len(uses) > 1 or
                              "tokenizer ptb" not in uses else []))
    return Problem(str(plan.source), key, (
        f"{' and '.join(uses)} run{'s' if len(uses) == 1 else ''} Java and java is not on "
        f"PATH (read by {shown}): install a Java runtime (Debian / Ubuntu: apt install "
        f"default-jre-headless), or score without Java: {without} (scores then differ from "
        f"the published ones)"))
