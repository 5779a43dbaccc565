"""Caption tokenisation before scoring (the COCO caption-evaluation convention).

``ptb`` (default) is pycocoevalcap's ``PTBTokenizer``: Stanford CoreNLP's PTB
tokenizer (Java), lower-cased, punctuation tokens dropped. Every published
CIDEr-D number is computed after it. ``simple`` needs no Java: lower-case,
split words from punctuation with a regex, drop the same punctuation. It is
NOT bit-identical to ``ptb`` (contractions such as "don't" -> "don t" instead
of "do n't", and other PTB rules), so its scores are close but not comparable
to published ones.

The ``ptb`` path writes one caption per line and reads one line back per
caption. A line break inside a caption (any of :data:`LINE_BREAKS`, e.g.
``\\r``, ``\\f``, U+2028) would make Java emit an extra line and shift every
later caption onto another id's references, so each is replaced by a space
first (what Java does with the others anyway), and the number of lines that
come back is checked.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from typing import Literal, Mapping

Tokenizer = Literal["ptb", "simple"]

# pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS
PUNCTUATIONS = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                ".", "?", "!", ",", ":", "-", "--", "...", ";"}
_TOKEN = re.compile(r"\w+|[^\w\s]")
# Every character Python's str.splitlines() breaks at (a superset of what Stanford's
# PTBTokenizer breaks at: \n \r \v \f U+2028 U+2029).
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK = re.compile(f"[{re.escape(LINE_BREAKS)}]")
_PTB_CMD = ["java", "-cp", "stanford-corenlp-3.4.1.jar", "edu.stanford.nlp.process.PTBTokenizer",
            "-preserveLines", "-lowerCase"]  # pycocoevalcap's PTBTokenizer, exactly


def one_line(text: str) -> str:
    """``text`` with every line break replaced by a space."""
    return _BREAK.sub(" ", text)


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
    ids = [k for k, v in captions.items() for _ in v]
    lines = _ptb_lines([one_line(c) for v in captions.values() for c in v])
    out: dict[str, list[str]] = {k: [] for k in captions}
    for k, line in zip(ids, lines):
        out[k].append(" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS))
    return out


def _ptb_lines(sentences: list[str]) -> list[str]:
    """Stanford's PTBTokenizer over one sentence per line (pycocoevalcap's call, with the
    line count checked: a mismatch would pair captions with the wrong ids)."""
    import pycocoevalcap.tokenizer.ptbtokenizer as ptb

    if not sentences:
        return []
    with tempfile.TemporaryDirectory(prefix="fcap-ptb-") as tmp:
        path = os.path.join(tmp, "captions.txt")
        with open(path, "wb") as f:
            f.write("\n".join(sentences).encode())
        done = subprocess.run(_PTB_CMD + [path], cwd=os.path.dirname(os.path.abspath(ptb.__file__)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"Stanford PTBTokenizer (java) failed with exit code "
                           f"{done.returncode}: {done.stderr.decode(errors='replace').strip()[-500:]}")
    lines = done.stdout.decode().split("\n")
    if len(lines) != len(sentences):
        raise RuntimeError(f"Stanford PTBTokenizer returned {len(lines)} lines for "
                           f"{len(sentences)} captions; scoring them would pair captions with "
                           "the wrong ids")
    return lines
