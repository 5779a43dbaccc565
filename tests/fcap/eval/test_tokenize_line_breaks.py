"""A line break inside a caption must not shift the PTB tokenizer's lines onto other ids."""
import pytest
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from fcap.eval import score
from fcap.eval import tokenize as tokenize_module
from fcap.eval.tokenize import tokenize

# Java's PTBTokenizer starts a new line at \r, \f, \v, U+2028 and U+2029; Python's
# splitlines() also at \x1c-\x1e and \x85.
BREAKS = ["\r", "\r\n", "\f", "\v", "\u2028", "\u2029", "\x1c", "\x1d", "\x1e", "\x85"]


def test_every_line_break_becomes_a_space_and_later_captions_keep_their_ids():
    captions = {f"v{i}": [f"Word{i}{ch}next{i}.", f"other {i}"] for i, ch in enumerate(BREAKS)}
    captions["last"] = ["the last caption"]
    expected = {f"v{i}": [f"word{i} next{i}", f"other {i}"] for i in range(len(BREAKS))}
    expected["last"] = ["the last caption"]
    assert tokenize(captions, "ptb") == expected
    assert tokenize(captions, "simple") == expected


# Predictions share no word with their own references: every metric is 0.0. A \r in
# the first reference shifts each later line by one, pairing each prediction with
# text that does match.
REFERENCES = {"v1": ["a dog\rruns in the park"], "v2": ["a red car drives on the road"],
              "v3": ["people dance at a party"]}
PREDICTIONS = {"v1": "cats sleep", "v2": "green fields", "v3": "two birds sing"}


def test_cider_of_captions_with_a_line_break_is_not_scored_against_shifted_lines():
    assert score(PREDICTIONS, REFERENCES, metrics=("cider",)) == {"CIDEr": 0.0}
    spaced = {k: [c.replace("\r", " ") for c in v] for k, v in REFERENCES.items()}
    tok = PTBTokenizer()
    direct = Cider().compute_score(
        tok.tokenize({k: [{"caption": c} for c in v] for k, v in spaced.items()}),
        tok.tokenize({k: [{"caption": v}] for k, v in PREDICTIONS.items()}))[0]
    assert direct == 0.0
    # what pycocoevalcap itself does with the unreplaced \r: the bug this guards against
    shifted = tok.tokenize({k: [{"caption": c} for c in v] for k, v in REFERENCES.items()})
    assert shifted["v2"] == ["runs in the park"]


def test_a_line_count_mismatch_is_an_error_not_a_silent_shift(monkeypatch):
    monkeypatch.setattr(tokenize_module, "one_line", lambda text: text)  # as before the fix
    with pytest.raises(RuntimeError, match=r"returned 3 lines for 2 captions; scoring them "
                                           r"would pair captions with the wrong ids"):
        tokenize({"a": ["one\rtwo"], "b": ["three"]}, "ptb")
