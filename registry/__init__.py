"""fcap's registries: one :class:`Registry` instance per kind of component.

``from registry import GATES`` etc. Each instance's docstring is the contract a
registered object must meet; plugin authors rely on these, so they are kept
stable and tested (``tests/registry/test_contracts.py``).

Every entry is registered as ``@KIND.register("name", config=SomeConfig)``
where ``SomeConfig`` is a frozen dataclass of the component's options (or
``None``). In YAML a block ``{name: <name>, **options}`` selects the entry and
its remaining keys are validated against ``SomeConfig``.
"""
from registry.registry import Entry, Registry, UnknownComponentError, origin_of, suggest

TASKS = Registry("task", """Stages of an experiment.

Contract: a callable ``run(cfg, ctx) -> Mapping | None``. ``cfg`` is an instance
of the registered config dataclass, built from the stage's block merged over the
experiment's shared top-level blocks (``model:``, ``optimizer:``, ...; only the
blocks that are fields of ``cfg``). ``ctx`` is a :class:`fcap.context.StageContext`
(run directory, dependency run directories, logger, config hash). The returned
mapping (JSON-serialisable) is stored as the stage's summary. Raising fails the
stage; its dependents do not run. A task must be runnable from ``ctx`` alone, on
one process or under torchrun/SLURM (``fcap.train.distributed.setup()`` reads the
environment), and rerunning an interrupted stage resumes it: training tasks raise
``fcap.train.TrainingInterrupted`` after saving a checkpoint when stopped early.
Training tasks leave their adapters in ``<run_dir>/adapters/`` (safetensors).
A task declares the artefacts it writes, ``outputs={"name": "path in run_dir"}``
(the first is the default); a later stage's option ``{from: stage, output: name}``
receives that path (fcap/experiment/refs.py).
""")

DATA_SOURCES = Registry("data source", """Datasets and dataset mixtures.

Contract: a class built as ``cls(cfg, *, env)`` where ``env`` is a
:class:`fcap.data.env.DataEnv` (seed, rank/world size, ``data_root`` for relative
roots, skip accounting). It provides ``loader(spec, *, use_cache=True)``
returning a loader (an iterable of batches as in docs/CONTRACTS.md, with
``state_dict()``/``load_state_dict()`` for exact resume and ``skip_stats()``);
``spec`` is a :class:`fcap.data.items.LoaderSpec`. Subclass
:class:`fcap.data.source.MapSource` (implement ``items(split, *, train)``) or
:class:`fcap.data.source.StreamSource` (``shards(split)``, ``read_shard(shard)``)
to get resumable loaders, skip accounting and the feature cache for free.
Annotation files are parsed in ``__init__`` so that a bad one fails at start-up.
Trainers call :func:`fcap.data.build_loader`; see ``fcap/data/README.md``.
""")

CROSS_ATTENTIONS = Registry("cross-attention", """Cross-attention from text to video inside an adapter.

Contract: an ``nn.Module`` built as ``cls(cfg, *, dim, visual_dim)``.
``forward(x, v, *, frame_mask=None)`` takes normalised text states
``x: (b, q, dim)`` and visual states ``v: (b, t, s, visual_dim)`` with
``frame_mask: (b, t)`` bool (True = real frame) and returns ``(b, q, dim)``.
Padded frames (mask False) must not change the output.
""")

GATES = Registry("gate", """Tanh gates on an adapter's residual branches.

Contract: an ``nn.Module`` built as ``cls(cfg, *, dim)`` whose ``forward(x)``
returns ``x`` (shape ``(..., dim)``) multiplied by the gate's value, and whose
``value()`` returns that value as a tensor broadcastable to ``(dim,)``
(logged as mean |tanh(g)|).
""")

OPTIMIZERS = Registry("optimizer", """Optimizers for the trainable (adapter) parameters.

Contract: a callable ``fn(cfg, params) -> torch.optim.Optimizer`` where
``params`` is an iterable of parameters or parameter groups (only the adapters').
It must return a plain torch optimizer whose ``state_dict`` round-trips exactly:
DeepSpeed wraps it (ZeRO partitions its state across ranks) and checkpoints it.
""")

SCHEDULERS = Registry("scheduler", """Learning-rate schedules, stepped once per optimizer step.

Contract: a callable ``fn(cfg, optimizer, *, total_steps) ->
torch.optim.lr_scheduler.LRScheduler`` whose ``state_dict`` restores it exactly
(exact resume). DeepSpeed steps it after each *applied* update; a skipped bad
step does not advance it.
""")

METRICS = Registry("metric", """Caption metrics.

Contract: a callable ``fn(cfg, *, predictions, references) -> dict[str, float]``
with ``predictions: {id: caption}`` and ``references: {id: [caption, ...]}``
over the same ids, already tokenised by ``fcap.eval.score`` (lower-case tokens
joined by spaces, punctuation removed; PTB by default). Returned keys are
display names (``CIDEr``, ``BLEU-4``, ...) and may be several per metric.
A metric that scores against ground truth other than the references also takes
a keyword ``truth``: ``{id: {field: value}}`` or None, passed by
``fcap.eval.score(..., truth=...)`` (None when the caller has none; the
metric then derives it or raises). ``attributes`` (the shapes world) is one.
""")

LAUNCHERS = Registry("launcher", """Where and how the stages of an experiment run.

Contract: a class built as ``cls(cfg)`` with ``launch(plan, *, force, dry_run)``
where ``plan`` is a :class:`fcap.experiment.Plan`; returns the process exit code
(0 success, 1 a stage failed). ``force`` restarts the chosen runs, not those in
``plan.implicit`` (selected only because chosen ones read them: they resume).
""")

MODELS = Registry("model", """Pretrained model families: language models, visual encoders,
the video captioner and the pseudolabeller.

Contract: a class with a ``role`` attribute built as ``cls(cfg)``; one interface
per role (``fcap/models/README.md`` lists what each provides): ``"lm"``
(``opt``), ``"visual"`` (``timesformer``), ``"captioner"`` (the video captioner,
``frozen_captioner``) or ``"labeler"`` (an image captioner writing pseudolabels,
``blip``: ``caption(frames, *, seeds, sampling)`` plus ``id``, ``weights_hash``,
``dtype``, ``device``).
""")

ALL = {
    "task": TASKS,
    "data_source": DATA_SOURCES,
    "cross_attention": CROSS_ATTENTIONS,
    "gate": GATES,
    "optimizer": OPTIMIZERS,
    "scheduler": SCHEDULERS,
    "metric": METRICS,
    "launcher": LAUNCHERS,
    "model": MODELS,
}

__all__ = [
    "ALL", "CROSS_ATTENTIONS", "DATA_SOURCES", "Entry", "GATES", "LAUNCHERS", "METRICS",
    "MODELS", "OPTIMIZERS", "Registry", "SCHEDULERS", "TASKS", "UnknownComponentError",
    "origin_of", "suggest",
]
