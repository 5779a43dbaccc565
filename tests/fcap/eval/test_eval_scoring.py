import subprocess
import sys
import textwrap

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from fcap.config import ConfigError, from_dict
from fcap.eval import ScoringConfig, score
from fcap.eval.tokenize import simple, tokenize

REFERENCES = {
    "video7010": ["A man is cooking pasta in a kitchen.", "a chef prepares food",
                  "Someone is boiling noodles on the stove."],
    "video7011": ["Two dogs are playing in the park!", "dogs run around on grass"],
    "video7012": ["a woman sings on a stage", "A singer performs a song.", "a woman is singing"],
    "video7013": ["A red car drives down the road.", "a car is driving"],
    "video7014": ["people are dancing", "A group of people dance at a party."],
}
PREDICTIONS = {
    "video7010": "a man is cooking in a kitchen",
    "video7011": "two dogs are playing",
    "video7012": "a woman is singing on a stage",
    "video7013": "a man is driving a car",
    "video7014": "",  # an empty caption must score, not crash
}


def direct(scorer, **kwargs):
    """The pycocoevalcap recipe: PTB-tokenise both sides, then compute_score(gts, res)."""
    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in REFERENCES.items()})
    res = tok.tokenize({k: [{"caption": v}] for k, v in PREDICTIONS.items()})
    return scorer.compute_score(gts, res, **kwargs)[0]


def test_cider_bleu_rouge_equal_direct_pycocoevalcap_calls():
    ours = score(PREDICTIONS, REFERENCES, metrics=("cider", "bleu", "rouge_l"))
    assert ours["CIDEr"] == direct(Cider())
    assert [ours[f"BLEU-{n}"] for n in (1, 2, 3, 4)] == direct(Bleu(4), verbose=0)
    assert ours["ROUGE-L"] == direct(Rouge())
    assert 0.5 < ours["CIDEr"] < 5.0  # a real, non-degenerate value for this fixture


def test_meteor_equals_direct_call():
    ours = score(PREDICTIONS, REFERENCES, metrics=("meteor",))
    assert ours == {"METEOR": direct(Meteor())}
    assert 0.0 < ours["METEOR"] < 1.0


def test_perfect_predictions_beat_shuffled_ones():
    perfect = {k: v[0] for k, v in REFERENCES.items()}
    keys = list(perfect)
    shuffled = {k: perfect[keys[(i + 1) % len(keys)]] for i, k in enumerate(keys)}
    good = score(perfect, REFERENCES, metrics=("cider",), tokenizer="simple")["CIDEr"]
    bad = score(shuffled, REFERENCES, metrics=("cider",), tokenizer="simple")["CIDEr"]
    assert good > 5 * bad


def test_simple_tokenizer_matches_ptb_on_plain_text_not_on_contractions():
    plain = {"a": ["A man, cooking pasta!", "two dogs run."]}
    assert tokenize(plain, "simple") == tokenize(plain, "ptb") == {
        "a": ["a man cooking pasta", "two dogs run"]}
    assert simple("Don't stop") == "don t stop"
    assert tokenize({"a": ["Don't stop"]}, "ptb") == {"a": ["do n't stop"]}


def test_mismatched_ids_are_reported():
    with pytest.raises(ValueError, match=r"1 without prediction \(e.g. \['video7014'\]\)"):
        score({k: v for k, v in PREDICTIONS.items() if k != "video7014"}, REFERENCES,
              metrics=("cider",), tokenizer="simple")


def test_metric_names_are_validated_with_a_reason_for_spice():
    with pytest.raises(ConfigError) as err:
        from_dict(ScoringConfig, {"metrics": ["cider", "spice"]}, key="scoring")
    assert "SPICE is not offered" in str(err.value) and "downloads Stanford CoreNLP" in str(err.value)
    with pytest.raises(ConfigError) as err:
        from_dict(ScoringConfig, {"metrics": ["cidr"]}, key="scoring")
    assert "no metric 'cidr' in registry 'metric'; did you mean 'cider'?" in str(err.value)
    with pytest.raises(ConfigError, match="'bpe' is not allowed"):
        from_dict(ScoringConfig, {"tokenizer": "bpe"}, key="scoring")


# fcap.eval.metrics.meteor with pycocoevalcap's Meteor._stat patched by ``patch``, in a fresh
# interpreter: it must print what meteor() raised and then exit (not hang at exit).
_METEOR_CHILD = textwrap.dedent("""
    import pycocoevalcap.meteor.meteor as m
    from fcap.eval.metrics import meteor
    real, calls = m.Meteor._stat, []
    def _stat(self, hyp, refs):
        calls.append(1)
        {patch}
        return real(self, hyp, refs)
    m.Meteor._stat = _stat
    try:
        meteor(None, predictions={{"a": "a dog runs", "b": "a cat sits"}},
               references={{"a": ["a dog runs"], "b": ["a cat sits down"]}})
    except BaseException as err:
        print(type(err).__name__, err)
""")


@pytest.mark.parametrize("patch, said", [
    # Ctrl-C while scoring: pycocoevalcap keeps its lock, and its __del__ then waited forever
    ("if len(calls) == 2: raise KeyboardInterrupt", "KeyboardInterrupt"),
    # the Java process dies while scoring: the error names it, not float(b'')
    ("if len(calls) == 2: self.meteor_p.kill(); self.meteor_p.wait()",
     "RuntimeError METEOR's Java process (java -jar -Xmx2G meteor-1.5.jar"),
])
def test_an_interrupted_meteor_raises_and_the_process_exits(patch, said):
    child = subprocess.run([sys.executable, "-c", _METEOR_CHILD.format(patch=patch)],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith(said), child.stdout
