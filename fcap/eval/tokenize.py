"""Caption tokenisation before scoring (the COCO caption-evaluation convention).

``ptb`` (default) is pycocoevalcap's ``PTBTokenizer``: Stanford CoreNLP's PTB
tokenizer (Java), lower-cased, punctuation tokens dropped. Every published
CIDEr-D number is computed after it. ``simple`` needs no Java: lower-case,
split words from punctuation with a regex, drop the same punctuation. It is
NOT bit-identical to ``ptb`` (contractions such as "don't" -> "don t" instead
of "do n't", and other PTB rules), so its scores are close but not comparable
to published ones.
"""
from __future__ import annotations

import re
import shutil
from typing import Literal, Mapping

Tokenizer = Literal["ptb", "simple"]

# pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS
PUNCTUATIONS = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                ".", "?", "!", ",", ":", "-", "--", "...", ";"}
_TOKEN = re.compile(r"\w+|[^\w\s]")


def simple(text: str) -> str:
    return " ".join(t for t in _TOKEN.findall(text.lower()) if t not in PUNCTUATIONS)


def tokenize(captions: Mapping[str, list[str]], kind: Tokenizer = "ptb") -> dict[str, list[str]]:
    """``{id: [caption, ...]}`` -> the same with each caption tokenised and re-joined by spaces."""
    if kind == "simple":
        return {k: [simple(c) for c in v] for k, v in captions.items()}
    if kind != "ptb":
        raise ValueError(f"tokenizer {kind!r} is not allowed; allowed: 'ptb', 'simple'")
    if shutil.which("java") is None:
        raise RuntimeError("tokenizer 'ptb' runs Stanford's PTBTokenizer and needs Java on PATH; "
                           "install a JRE or set tokenizer: simple (not bit-identical)")
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    data = {k: [{"caption": c} for c in v] for k, v in captions.items()}
    out = PTBTokenizer().tokenize(data)
    # PTBTokenizer drops ids whose captions produced no lines; keep them, empty.
    return {k: out.get(k, [""] * len(v)) for k, v in captions.items()}
