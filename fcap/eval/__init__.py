"""fcap.eval: caption generation over a split and pycocoevalcap scoring.

Importing this package registers ``METRICS`` (cider, bleu, meteor, rouge_l, and
attributes for the shapes world).
"""
from fcap.eval import attributes, metrics  # noqa: F401  (register components)
from fcap.eval.scoring import DEFAULT_METRICS, ScoringConfig, score

__all__ = ["DEFAULT_METRICS", "ScoringConfig", "score"]
