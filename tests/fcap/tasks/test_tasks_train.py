import json

import pytest
from conftest import MODEL, run_stage

from fcap.config import ConfigError, from_dict
from fcap.train import TrainingInterrupted


def rows(path):
    return [json.loads(r) for r in path.read_text().splitlines()]


def test_finetune_starts_from_pretrain_adapters_and_validates(shapes, trained, tmp_path):
    # pixels, not cached features: exercises decoding + the frozen TimeSformer
    summary = run_stage(tmp_path, "finetune", "caption_finetune", {
        "model": MODEL, "data": dict(shapes["source"], split="train"), "datasets": shapes["datasets"],
        "val_data": shapes["test"], "val_max_items": 8,
        "scoring": {"tokenizer": "simple", "metrics": ["cider", "bleu"]},
        "optimizer": {"name": "adamw", "lr": 1e-3},
        "train": {"steps": 4, "batch_size": 8, "log_every": 1, "eval_every": 2, "save_every": 0}},
        init_from=shapes["root"] / "pretrain")
    assert summary["init_adapters"] == str(shapes["root"] / "pretrain" / "adapters")
    fine = rows(tmp_path / "finetune" / "metrics.jsonl")
    first_pretrain = rows(shapes["root"] / "pretrain" / "metrics.jsonl")[0]["train/loss"]
    assert fine[0]["train/loss"] < first_pretrain - 0.5  # it did not start from scratch
    val = [r for r in fine if "val/loss" in r]
    assert [r["step"] for r in val] == [2, 4]
    assert {"val/CIDEr", "val/BLEU-4"} <= set(val[-1])
    assert val[-1]["val/CIDEr"] > 0.5
    assert (tmp_path / "finetune" / "adapters" / "manifest.json").is_file()


def test_finetune_without_upstream_is_an_error(shapes, tmp_path):
    with pytest.raises(ValueError, match="task 'caption_finetune' \\(stage finetune\\) starts from "
                                         "trained adapters: give the stage 'init_from: <stage>'"):
        run_stage(tmp_path, "finetune", "caption_finetune",
                  {"model": MODEL, "data": shapes["train"], "datasets": shapes["datasets"]})


def test_stopped_stage_resumes_to_identical_adapters(shapes, tmp_path):
    body = {"model": MODEL, "data": shapes["train"], "datasets": shapes["datasets"],
            "optimizer": {"name": "adamw", "lr": 5e-3},
            "train": {"steps": 6, "batch_size": 8, "grad_accum": 2, "log_every": 2, "save_every": 4}}
    run_stage(tmp_path / "a", "pretrain", "caption_pretrain", body, config_hash="h")
    with pytest.raises(TrainingInterrupted, match="stopped at step 3"):
        run_stage(tmp_path / "b", "pretrain", "caption_pretrain", body, config_hash="h",
                  extra={"stop_after": 3})
    summary = run_stage(tmp_path / "b", "pretrain", "caption_pretrain", body, config_hash="h")
    assert summary["resumed_from"] == 3
    a = (tmp_path / "a" / "pretrain" / "adapters" / "adapters.safetensors").read_bytes()
    b = (tmp_path / "b" / "pretrain" / "adapters" / "adapters.safetensors").read_bytes()
    assert a == b


def test_task_configs_report_every_problem_by_key(shapes, tmp_path):
    with pytest.raises(ConfigError) as err:
        run_stage(tmp_path, "evaluate", "caption_eval",
                  {"model": MODEL, "batch_sise": 4})
    text = str(err.value)
    assert "stages.evaluate.data: missing required key 'data'" in text
    assert "stages.evaluate.batch_sise: unknown key 'batch_sise'; did you mean 'batch_size'?" in text
    with pytest.raises(ConfigError, match="stages.evaluate.scoring.metrics: ScoringConfig: "
                                          "metrics: SPICE is not offered"):
        run_stage(tmp_path, "evaluate", "caption_eval",
                  {"model": MODEL, "data": shapes["test"], "scoring": {"metrics": ["cider", "spice"]}})
    with pytest.raises(ConfigError, match="stages.evaluate.metrics: unknown key 'metrics'.* "
                                          "allowed keys: .*scoring="):
        run_stage(tmp_path, "evaluate", "caption_eval",
                  {"model": MODEL, "data": shapes["test"], "metrics": ["cider"]})
    with pytest.raises(ConfigError) as err:
        run_stage(tmp_path, "pretrain", "caption_pretrain",
                  {"data": shapes["train"], "train": {"zero_stage": 3, "precision": "fp8"}})
    text = str(err.value)
    assert "stages.pretrain.train.zero_stage: 3 is not allowed" in text
    assert "stages.pretrain.train.precision: 'fp8' is not allowed" in text


def test_validation_scores_cider_alone_unless_told():
    from fcap.tasks.caption_train import PretrainConfig

    source = {"name": "msrvtt", "root": "msrvtt", "split": "val"}
    assert from_dict(PretrainConfig, {"data": source}).scoring.metrics == ("cider",)
    cfg = from_dict(PretrainConfig, {"data": source, "scoring": {"tokenizer": "simple"}})
    assert cfg.scoring.metrics == ("cider",) and cfg.scoring.tokenizer == "simple"


def test_a_warmup_longer_than_the_stage_is_refused_when_planned():
    from fcap.tasks.caption_train import PretrainConfig

    source = {"name": "msrvtt", "root": "msrvtt", "split": "train"}
    sched = {"name": "warmup_cosine", "warmup_steps": 200}
    with pytest.raises(ConfigError) as err:
        from_dict(PretrainConfig, {"data": source, "scheduler": sched,
                                   "train": {"steps": 4000, "step_scale": 0.01}}, source="f.yaml")
    assert ("f.yaml: train: PretrainConfig: train: the stage runs 40 steps (steps 4000 x "
            "step_scale 0.01 x step_factor 1), fewer than scheduler.warmup_steps=200: raise "
            "train.steps or lower scheduler.warmup_steps") in str(err.value)
    cfg = from_dict(PretrainConfig, {"data": source, "scheduler": sched, "train": {"steps": 200}})
    assert cfg.train.total_steps == 200  # a warmup as long as the stage is allowed
    assert from_dict(PretrainConfig, {"data": source, "train": {"steps": 1}}).scheduler.name == "constant"
