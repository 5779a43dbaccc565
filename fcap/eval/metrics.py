"""``METRICS``: caption metrics computed by pycocoevalcap on tokenised text.

Values are pycocoevalcap's own (CIDEr-D 0.546 is the paper's "54.6"). SPICE is
not offered: pycocoevalcap's SPICE downloads Stanford CoreNLP models at run
time, which fcap's offline machines cannot do.
"""
from __future__ import annotations

from registry import METRICS

UNAVAILABLE = {"spice": "SPICE is not offered: pycocoevalcap's SPICE downloads Stanford CoreNLP "
                        "at run time, which an offline run cannot do"}


# metrics that start a Java process (pycocoevalcap's METEOR 1.5 jar)
JAVA_METRICS = ("meteor",)


def _lists(predictions: dict[str, str]) -> dict[str, list[str]]:
    return {k: [v] for k, v in predictions.items()}


@METRICS.register("cider")
def cider(cfg, *, predictions, references) -> dict[str, float]:
    """CIDEr-D (pycocoevalcap ``Cider``: n=4, sigma=6, clipped counts, length penalty)."""
    from pycocoevalcap.cider.cider import Cider

    score, _ = Cider().compute_score(references, _lists(predictions))
    return {"CIDEr": float(score)}


@METRICS.register("bleu")
def bleu(cfg, *, predictions, references) -> dict[str, float]:
    """BLEU-1..4 (corpus level, 'closest' reference length)."""
    from pycocoevalcap.bleu.bleu import Bleu

    scores, _ = Bleu(4).compute_score(references, _lists(predictions), verbose=0)
    return {f"BLEU-{n}": float(s) for n, s in enumerate(scores, start=1)}


@METRICS.register("meteor")
def meteor(cfg, *, predictions, references) -> dict[str, float]:
    """METEOR 1.5 (Java, English, normalised): by the local run's shared METEOR process, or
    by one started for this evaluation (fcap/eval/meteor_server.py)."""
    from fcap.eval import meteor_server

    score, _ = meteor_server.scores(references, _lists(predictions))
    return {"METEOR": float(score)}


@METRICS.register("rouge_l")
def rouge_l(cfg, *, predictions, references) -> dict[str, float]:
    """ROUGE-L (F-measure of the longest common subsequence, beta 1.2)."""
    from pycocoevalcap.rouge.rouge import Rouge

    score, _ = Rouge().compute_score(references, _lists(predictions))
    return {"ROUGE-L": float(score)}
