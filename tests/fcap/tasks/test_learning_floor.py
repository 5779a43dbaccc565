"""The shapes benchmark's learning floor (issue 13), with the pretrained tiny models.

Adapters trained on the shapes world's train clips between the pretrained tiny
OPT and TimeSformer (``source: tiny-pretrained``, what the tiny profile uses)
must name the shape and the motion of held-out test clips far better than the
same recipe trained on shuffled videos (each caption paired with another
clip's video: it can only learn the caption prior). Scored per attribute
against the world's ground truth (``attributes`` metric, ``truth/clips.jsonl``).
"""
import json

import pytest

from conftest import run_stage

MODEL = {"lm": {"name": "opt", "source": "tiny-pretrained"},
         "visual": {"name": "timesformer", "source": "tiny-pretrained"},
         "adapters": {"layers": [2, 3]}}
STEPS = 200
DATASETS = {"num_workers": 0, "shapes_world": {}}
SOURCE = {"name": "msrvtt", "root": "msrvtt"}


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    root = tmp_path_factory.mktemp("floor")
    data = {}
    for split in ("train", "test"):
        summary = run_stage(root, f"features-{split}", "extract_features",
                            {"model": MODEL, "data": dict(SOURCE, split=split),
                             "datasets": DATASETS, "batch_size": 40})
        data[split] = dict(SOURCE, split=split, features=summary["out_dir"])
    scores = {}
    for name, shuffled in (("trained", False), ("shuffled", True)):
        run_stage(root, f"pretrain-{name}", "caption_pretrain", {
            "model": MODEL, "data": data["train"], "datasets": DATASETS,
            "optimizer": {"name": "adamw", "lr": 5e-3}, "shuffle_videos": shuffled,
            "train": {"steps": STEPS, "batch_size": 16, "log_every": 50, "save_every": 0}})
        summary = run_stage(root, f"eval-{name}", "caption_eval", {
            "model": MODEL, "data": data["test"], "datasets": DATASETS, "batch_size": 50,
            "scoring": {"metrics": ["cider", "attributes"]}, "decoding": {"max_new_tokens": 25}},
            init_from=root / f"pretrain-{name}")
        scores[name] = summary
    return root, scores


def test_trained_adapters_name_shape_and_motion_far_above_the_shuffled_control(floor):
    _, scores = floor
    good, prior = scores["trained"]["metrics"], scores["shuffled"]["metrics"]
    table = {k: (round(good[k], 3), round(prior[k], 3)) for k in ("shape", "direction", "colour")}
    assert good["shape"] >= prior["shape"] + 0.25, table
    assert good["direction"] >= prior["direction"] + 0.3, table
    assert prior["direction"] <= 0.45, table  # chance 0.25: the control learns no motion


def test_eval_scores_against_the_world_truth_and_counts_eos(floor):
    root, scores = floor
    summary = scores["trained"]
    assert summary["truth"] is not None and summary["truth"].endswith("clips.jsonl")
    assert summary["items"] == 200
    assert summary["eos_fraction"] == 1.0  # the budget fits every caption: none cut mid-word
    preds = json.loads((root / "eval-trained" / "predictions.json").read_text())
    truth = {}
    for line in open(summary["truth"]):
        record = json.loads(line)
        if record["layout"] == "msrvtt":
            truth[record["id"]] = record
    from fcap.data.shapes.attributes import parse

    hits = sum(parse(preds[k])["shape"] == truth[k]["shape"] for k in preds)
    assert hits / len(preds) == pytest.approx(summary["metrics"]["shape"])
