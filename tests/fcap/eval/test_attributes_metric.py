"""The ``attributes`` metric: per-attribute accuracy of shapes-world captions against the ground truth."""
from __future__ import annotations

import pytest

import fcap.eval  # noqa: F401  (registers METRICS)
from fcap.data.shapes.attributes import parse
from fcap.eval import score
from fcap.eval.scoring import check_metric_names
from registry import METRICS

REFERENCES = {
    "video1": ["a red square moves left on a blue background",
               "the red square slides left across a blue background"],
    "video2": ["a green circle is moving up over a gray background"],
    "video3": ["the white triangle slides down across a black background"],
    "video4": ["a yellow circle moves right on a brown background"],
}
PREDICTIONS = {
    "video1": "a red square moves left on a blue background",  # all right
    "video2": "a green circle moves down on a gray background",  # direction wrong
    "video3": "a white square slides down acr",  # cut mid-word: shape wrong, no background
    "video4": "A yellow circle, moving right.",  # background missing; punctuation, capitals
}


def test_parse_reads_the_templates_and_free_text():
    assert parse("the red square slides left across a blue background") == {
        "colour": "red", "shape": "square", "direction": "left", "background": "blue"}
    assert parse("a picture of a purple triangle on gray") == {
        "colour": "purple", "shape": "triangle", "direction": None, "background": "gray"}
    assert parse("a green square slides down acr") == {
        "colour": "green", "shape": "square", "direction": "down", "background": None}
    assert parse("hey guys welcome back") == dict.fromkeys(("colour", "shape", "direction",
                                                            "background"))


def test_attributes_is_a_registered_metric_scored_per_attribute():
    check_metric_names(("cider", "attributes"))
    out = score(PREDICTIONS, REFERENCES, metrics=("attributes",), tokenizer="simple")
    assert out == {"colour": 1.0, "shape": 0.75, "direction": 0.75, "background": 0.5,
                   "all_attributes": 0.25, "direction_axis": 1.0}  # video2: down on up's axis


def test_direction_axis_counts_the_axis_and_not_the_sign():
    truth = {"h": parse("a red square moves left on blue"), "v": parse("a red square moves up on blue"),
             "still": parse("a red square on blue")}
    predictions = {"h": "a red square moves right on blue",  # sign wrong, axis right
                   "v": "a red square moves left on blue",  # axis wrong
                   "still": "a red square moves up on blue"}  # no direction to score
    references = {k: ["a red square on blue"] for k in truth}
    out = score(predictions, references, metrics=("attributes",), tokenizer="simple", truth=truth)
    assert out["direction"] == 0.0
    assert out["direction_axis"] == 0.5


def test_ground_truth_passed_to_score_takes_precedence_over_the_references():
    truth = {k: parse(v[0]) for k, v in REFERENCES.items()}
    truth["video1"] = {**truth["video1"], "colour": "purple"}  # e.g. the sidecar says so
    truth["video4"] = {**truth["video4"], "direction": None}  # a still image: not scored
    out = score(PREDICTIONS, REFERENCES, metrics=("attributes", "bleu"), tokenizer="simple",
                truth=truth)
    assert out["colour"] == 0.75
    assert out["direction"] == pytest.approx(2 / 3)  # video4 has no direction to score
    assert "BLEU-4" in out  # metrics without a truth keyword run as before


def test_references_that_name_no_shape_are_refused():
    with pytest.raises(ValueError, match=r"attributes: the references of 1 ids \(e\.g\. "
                                         r"\['v'\]\) name no shape of the shapes world"):
        METRICS.get("attributes").obj(None, predictions={"v": "a man is cooking"},
                                      references={"v": ["a man cooks pasta in a kitchen"]})


def test_predictions_without_ground_truth_are_refused():
    with pytest.raises(ValueError, match=r"attributes: 1 predicted ids have no ground truth "
                                         r"\(e\.g\. \['video9'\]\)"):
        METRICS.get("attributes").obj(None, predictions={"video9": "a red square"},
                                      references={"video9": ["a red square"]},
                                      truth={"video1": parse("a red square")})
