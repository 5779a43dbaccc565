"""Score predicted captions against references: tokenise once, run each metric."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Mapping

from fcap.eval.metrics import JAVA_METRICS, UNAVAILABLE
from fcap.eval.tokenize import Tokenizer, tokenize
from registry import METRICS

DEFAULT_METRICS = ("cider", "bleu", "meteor", "rouge_l")


@dataclass(frozen=True)
class ScoringConfig:
    """The ``scoring:`` block of an evaluation."""

    metrics: tuple[str, ...] = DEFAULT_METRICS  # names in METRICS; paper reports CIDEr-D
    tokenizer: Tokenizer = "ptb"  # ptb: Java PTBTokenizer (published numbers); simple: no Java, not bit-identical

    def __post_init__(self) -> None:
        check_metric_names(self.metrics)


def java_uses(cfg: ScoringConfig) -> list[str]:
    """What in ``cfg`` runs Java ('tokenizer ptb', 'metrics meteor'); [] when nothing does."""
    uses = ["tokenizer ptb"] if cfg.tokenizer == "ptb" else []
    return uses + [f"metrics {m}" for m in cfg.metrics if m in JAVA_METRICS]


def check_metric_names(names) -> None:
    if not names:
        raise ValueError("metrics: name at least one metric; known: " + ", ".join(METRICS.names()))
    for name in names:
        if name in UNAVAILABLE:
            raise ValueError(f"metrics: {UNAVAILABLE[name]}; known: {', '.join(METRICS.names())}")
        if name not in METRICS:
            raise ValueError(f"metrics: {METRICS.unknown_message(name)}")


def score(predictions: Mapping[str, str], references: Mapping[str, list[str]], *,
          metrics=DEFAULT_METRICS, tokenizer: Tokenizer = "ptb",
          truth: Mapping[str, Mapping] | None = None) -> dict[str, float]:
    """``predictions: {id: caption}``, ``references: {id: [caption, ...]}`` -> {metric: value}.

    ``truth``: optional ground truth per id (e.g. the shapes world's attributes,
    :func:`fcap.data.shapes.truth.load_truth`), handed to the metrics whose function
    takes a ``truth`` keyword (the METRICS contract); the others never see it.
    """
    check_metric_names(metrics)
    missing = sorted(set(references) - set(predictions))
    extra = sorted(set(predictions) - set(references))
    if missing or extra:
        raise ValueError(f"predictions and references must cover the same ids: "
                         f"{len(missing)} without prediction (e.g. {missing[:3]}), "
                         f"{len(extra)} without references (e.g. {extra[:3]})")
    empty = sorted(k for k, v in references.items() if not v)
    if empty:
        raise ValueError(f"{len(empty)} ids have no reference caption (e.g. {empty[:3]})")
    ids = sorted(references)
    joint = {f"r{i}": list(references[k]) for i, k in enumerate(ids)}
    joint.update({f"p{i}": [predictions[k]] for i, k in enumerate(ids)})
    tok = tokenize(joint, tokenizer)  # one Java call for both sides
    refs = {k: tok[f"r{i}"] for i, k in enumerate(ids)}
    preds = {k: tok[f"p{i}"][0] for i, k in enumerate(ids)}
    out: dict[str, float] = {}
    for name in metrics:
        fn = METRICS.get(name).obj
        extra = {"truth": truth} if "truth" in inspect.signature(fn).parameters else {}
        out.update(fn(None, predictions=preds, references=refs, **extra))
    return out
