"""``METRICS``: caption metrics computed by pycocoevalcap on tokenised text.

Values are pycocoevalcap's own (CIDEr-D 0.546 is the paper's "54.6"). SPICE is
not offered: pycocoevalcap's SPICE downloads Stanford CoreNLP models at run
time, which fcap's offline machines cannot do.
"""
from __future__ import annotations

import contextlib

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
    """METEOR 1.5 (Java, English, normalised): by the local run's shared METEOR process
    (fcap/eval/meteor_server.py), or by one started for this evaluation."""
    from fcap.eval import meteor_server

    answer = meteor_server.score(references, _lists(predictions))
    if answer is not None:
        return {"METEOR": float(answer[0])}
    scorer = start_meteor()
    try:
        score, _ = meteor_scores(scorer, references, _lists(predictions))
    finally:
        stop_meteor(scorer)
    return {"METEOR": float(score)}


def start_meteor():
    """pycocoevalcap's METEOR scorer: its Java process loads the paraphrase table (11-13 s
    of one core) while answering its first request."""
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


def meteor_scores(scorer, references, predictions) -> tuple[float, list[float]]:
    """``scorer.compute_score``; a Java process that died is a RuntimeError saying so."""
    try:
        return scorer.compute_score(references, predictions)
    except (ValueError, OSError) as err:  # a Java process that died answers b'' or breaks the pipe
        if scorer.meteor_p.poll() is None:
            raise
        said = scorer.meteor_p.stderr.read().decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"METEOR's Java process ({' '.join(scorer.meteor_cmd)}) ended with "
                           f"exit code {scorer.meteor_p.returncode} while scoring"
                           + (f": {said[-1]}" if said else "")) from err


def stop_meteor(scorer) -> None:
    """End pycocoevalcap's METEOR Java process now. Its ``__del__`` takes a lock that
    ``compute_score`` keeps when it is interrupted (Ctrl-C, a Java process that died), and
    would then wait for it forever when Python exits: the lock is released first."""
    if scorer.lock.locked():
        scorer.lock.release()
    with scorer.lock:
        with contextlib.suppress(OSError):  # a dead process: unsent lines break the pipe
            scorer.meteor_p.stdin.close()
        scorer.meteor_p.kill()
        scorer.meteor_p.wait()


@METRICS.register("rouge_l")
def rouge_l(cfg, *, predictions, references) -> dict[str, float]:
    """ROUGE-L (F-measure of the longest common subsequence, beta 1.2)."""
    from pycocoevalcap.rouge.rouge import Rouge

    score, _ = Rouge().compute_score(references, _lists(predictions))
    return {"ROUGE-L": float(score)}
