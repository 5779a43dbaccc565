from pathlib import Path

from fcap.experiment import build_plan

TABLE1 = Path(__file__).parents[3] / "experiments" / "table1.yaml"
RELATIVE = ["model.visual.source=./ckpt", "stages.label.captioner.source=blip",
            "stages.evaluate.adapters=old/adapters", "model.lm.source=facebook/opt-125m"]


def test_relative_checkpoint_and_adapter_paths_are_recorded_absolute(tmp_path, monkeypatch):
    for folder in ("ckpt", "blip"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path)
    plan = build_plan(TABLE1, overrides=RELATIVE)
    evaluate, label = plan.get("laion,seed=0", "evaluate"), plan.get("all_variants", "label")
    assert evaluate.cfg.model.visual.cfg.source == str(tmp_path / "ckpt")
    assert evaluate.cfg.adapters == str(tmp_path / "old" / "adapters")  # not made yet: still absolute
    assert label.cfg.captioner.cfg.source == str(tmp_path / "blip")
    # what config.yaml records, and what the hash is made of
    assert evaluate.resolved["stages"]["evaluate"]["model"]["visual"]["source"] == str(tmp_path / "ckpt")
    # a hub id, the tiny models and the data roots (under datasets.root) stay as given
    assert evaluate.cfg.model.lm.cfg.source == "facebook/opt-125m"
    assert build_plan(TABLE1).get("laion,seed=0", "evaluate").cfg.model.visual.cfg.source == (
        "tiny-pretrained")
    assert evaluate.cfg.data.cfg.root == "msrvtt"
    # the same folders named absolutely are the same runs; from another folder, other runs
    same = build_plan(TABLE1, overrides=[f"model.visual.source={tmp_path / 'ckpt'}",
                                         f"stages.label.captioner.source={tmp_path / 'blip'}",
                                         f"stages.evaluate.adapters={tmp_path / 'old/adapters'}",
                                         "model.lm.source=facebook/opt-125m"])
    assert same.get("laion,seed=0", "evaluate").config_hash == evaluate.config_hash
    assert same.get("all_variants", "label").config_hash == label.config_hash
    (tmp_path / "elsewhere" / "ckpt").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "elsewhere")
    moved = build_plan(TABLE1, overrides=RELATIVE)
    assert moved.get("laion,seed=0", "evaluate").config_hash != evaluate.config_hash
