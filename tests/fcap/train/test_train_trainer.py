import json
import pytest
import torch
from train_toys import adapter_state, make_trainer

from fcap.train import checkpoint, preemption
from fcap.train.preemption import TrainingInterrupted
from fcap.train.trainer import TrainHooks, TrainingDiverged


def equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stopped_and_resumed_run_is_bitwise_identical(tmp_path, dist_info):
    full = make_trainer(tmp_path / "full", dist_info, grad_accum=2)
    full_summary = full.fit()
    with pytest.raises(TrainingInterrupted, match="stopped at step 7"):
        make_trainer(tmp_path / "resumed", dist_info, grad_accum=2, stop_after=7).fit()
    again = make_trainer(tmp_path / "resumed", dist_info, grad_accum=2)
    summary = again.fit()
    assert summary["resumed_from"] == 7
    assert equal(adapter_state(full), adapter_state(again))
    assert summary["final_loss"] == full_summary["final_loss"]
    assert summary["samples"] == full_summary["samples"] == 12 * 2 * 4
    kept = sorted(p.name for p in (tmp_path / "full" / "checkpoints").iterdir())
    assert kept == ["step-00000008", "step-00000012"]  # keep_last 2 of 4, 8, 12
    # a different stream would have trained differently: the comparison can fail
    other = make_trainer(tmp_path / "other", dist_info, grad_accum=1)
    other.fit()
    assert not equal(adapter_state(full), adapter_state(other))


def test_only_adapters_reach_the_optimizer_and_frozen_weights_stay(tmp_path, dist_info):
    trainer = make_trainer(tmp_path, dist_info)
    frozen = {k: v.clone() for k, v in trainer.engine.module.frozen.state_dict().items()}
    trainer.fit()
    model = trainer.engine.module
    in_optimizer = {id(p) for group in trainer.engine.optimizer.bit16_groups for p in group}
    assert in_optimizer == {id(p) for p in model.adapter.parameters()}
    assert not any(p.requires_grad for p in model.frozen.parameters())
    assert equal(frozen, model.frozen.state_dict())


def test_logs_scalars_tensorboard_and_rank_file(tmp_path, dist_info):
    make_trainer(tmp_path, dist_info).fit()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10, 12]
    for key in ("train/loss", "train/lr", "train/grad_norm", "train/samples_per_s",
                "train/tokens_per_s", "train/video_fraction", "train/image_fraction",
                "train/bad_steps", "gates/layer0/attn"):
        assert key in rows[-1], key
    assert rows[-1]["train/video_fraction"] + rows[-1]["train/image_fraction"] == 1.0
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    ranks = (tmp_path / "ranks" / "rank-00000.jsonl").read_text().splitlines()
    assert len(ranks) == 6


def test_hooks_scalars_and_counts_are_logged_by_tag_and_summarised_by_group(tmp_path, dist_info):
    evaluated = []
    hooks = TrainHooks(scalars=lambda: {"gates/layer0/attn": 0.5, "gates/layer0/ffn": 0.25},
                       counts=lambda: {"data/skipped_items": 1.0, "data/attempted_items": 9.0},
                       evaluate=lambda step: evaluated.append(step) or {"CIDEr": float(step)})
    summary = make_trainer(tmp_path, dist_info, hooks=hooks, eval_every=6).fit()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "train/loss" in r][-1]
    assert last["gates/layer0/ffn"] == 0.25 and last["data/attempted_items"] == 9.0
    assert evaluated == [6, 12] and [r["val/CIDEr"] for r in rows if "val/CIDEr" in r] == [6.0, 12.0]
    assert summary["gates"] == {"layer0/attn": 0.5, "layer0/ffn": 0.25}
    assert summary["data"] == {"attempted_items": 9.0, "skipped_items": 1.0}


def test_a_scalar_tag_without_a_group_is_refused_at_the_first_log(tmp_path, dist_info):
    hooks = TrainHooks(scalars=lambda: {"steps": 1.0})
    with pytest.raises(ValueError, match="scalar tag 'steps': name it 'group/name'"):
        make_trainer(tmp_path, dist_info, hooks=hooks, steps=4, log_every=1).fit()
    assert not (tmp_path / "checkpoints").exists() or not list((tmp_path / "checkpoints").iterdir())
    hooks = TrainHooks(scalars=lambda: {"steps/x": 1.0})  # would overwrite summary["steps"]
    with pytest.raises(ValueError, match="scalar tag 'steps/x': .* other than the summary's own"):
        make_trainer(tmp_path / "b", dist_info, hooks=hooks, steps=2, log_every=1).fit()


def test_nan_steps_are_skipped_and_counted(tmp_path, dist_info):
    trainer = make_trainer(tmp_path, dist_info, debug_nan_steps=(3, 4), log_every=1, stop_after=2)
    with pytest.raises(TrainingInterrupted):
        trainer.fit()
    before = adapter_state(trainer)
    trainer = make_trainer(tmp_path, dist_info, debug_nan_steps=(3, 4), log_every=1, stop_after=4)
    with pytest.raises(TrainingInterrupted):
        trainer.fit()
    assert equal(before, adapter_state(trainer))  # both updates skipped
    summary = make_trainer(tmp_path, dist_info, debug_nan_steps=(3, 4), log_every=1).fit()
    assert summary["bad_steps"] == 2
    assert summary["final_loss"] is not None
    rows = {r["step"]: r for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())}
    assert rows[3]["train/bad_streak"] == 1 and rows[4]["train/bad_streak"] == 2
    assert rows[5]["train/bad_streak"] == 0 and rows[12]["train/bad_steps"] == 2


def test_non_finite_gradients_with_finite_loss_are_skipped(tmp_path, dist_info):
    trainer = make_trainer(tmp_path, dist_info, poison=(5,), log_every=1, stop_after=4)
    with pytest.raises(TrainingInterrupted):
        trainer.fit()
    before = adapter_state(trainer)
    trainer = make_trainer(tmp_path, dist_info, poison=(5,), log_every=1, stop_after=5)
    with pytest.raises(TrainingInterrupted):
        trainer.fit()
    assert equal(before, adapter_state(trainer))
    rows = {r["step"]: r for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())}
    assert rows[5]["train/bad_steps"] == 1
    assert isinstance(rows[5]["train/loss"], str)  # no good step in the interval: NaN, as text
    local = [json.loads(r) for r in (tmp_path / "ranks" / "rank-00000.jsonl").read_text().splitlines()]
    step5 = next(r for r in local if r["step"] == 5)
    assert step5["nonfinite"] == 0 and 0 < step5["loss"] < 100  # the loss itself was finite
    summary = make_trainer(tmp_path, dist_info, poison=(5,), log_every=1).fit()
    assert summary["bad_steps"] == 1 and summary["final_loss"] is not None


def test_bf16_skips_bad_steps_too(tmp_path, dist_info):
    summary = make_trainer(tmp_path, dist_info, precision="bf16", debug_nan_steps=(3,)).fit()
    assert summary["bad_steps"] == 1 and summary["steps"] == 12
    assert summary["final_loss"] is not None


def test_max_bad_steps_stops_with_last_good_checkpoint_intact(tmp_path, dist_info):
    trainer = make_trainer(tmp_path, dist_info, debug_nan_steps=(5, 6, 7, 8, 9), max_bad_steps=3)
    with pytest.raises(TrainingDiverged) as err:
        trainer.fit()
    msg = str(err.value)
    assert "stopped at step 7: 3 consecutive bad steps" in msg
    assert "max_bad_steps=3" in msg
    assert "step-00000004" in msg
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-00000004"]
    assert checkpoint.problem(tmp_path / "checkpoints" / "step-00000004") is None


def test_corrupt_latest_checkpoint_falls_back_to_previous(tmp_path, dist_info, caplog):
    full = make_trainer(tmp_path / "full", dist_info)
    full.fit()
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        make_trainer(run, dist_info, stop_after=8, keep_last=3).fit()
    latest = run / "checkpoints" / "step-00000008"
    optim = next((latest / "deepspeed").glob("*optim_states.pt"))
    optim.write_bytes(optim.read_bytes()[:100])  # truncated by a crash
    (run / "checkpoints" / ".tmp-step-00000012").mkdir()  # a save that never finished
    again = make_trainer(run, dist_info, keep_last=3)
    summary = again.fit()
    assert summary["resumed_from"] == 4
    assert "step-00000008 is unusable" in summary["checkpoint_fallbacks"][0]
    assert "optim_states.pt has 100 bytes" in summary["checkpoint_fallbacks"][0]
    assert equal(adapter_state(full), adapter_state(again))


def test_checkpoint_problems_are_named(tmp_path, dist_info):
    with pytest.raises(TrainingInterrupted):
        make_trainer(tmp_path, dist_info, stop_after=4).fit()
    ckpt = tmp_path / "checkpoints" / "step-00000004"
    assert checkpoint.problem(ckpt) is None
    state = ckpt / "rank-00000.pt"
    data = bytearray(state.read_bytes())
    data[-10] ^= 0xFF
    state.write_bytes(bytes(data))
    assert checkpoint.problem(ckpt) == "rank-00000.pt does not match its sha256 in MANIFEST.json"
    (ckpt / "MANIFEST.json").unlink()
    assert checkpoint.problem(ckpt) == "no MANIFEST.json (partial write)"


def test_changed_config_refuses_to_resume(tmp_path, dist_info):
    with pytest.raises(TrainingInterrupted):
        make_trainer(tmp_path, dist_info, stop_after=4).fit()
    with pytest.raises(checkpoint.CheckpointError, match="config hash toy, this stage has other"):
        make_trainer(tmp_path, dist_info, config_hash="other").fit()


def test_checkpoint_request_saves_and_stops_then_resumes(tmp_path, dist_info):
    full = make_trainer(tmp_path / "full", dist_info)
    full.fit()

    def signal_during_step_6(position):
        if position == 6:
            preemption.request_checkpoint()

    with pytest.raises(TrainingInterrupted, match=r"stopped at step 6 \(checkpoint requested\)"):
        make_trainer(tmp_path / "run", dist_info, on_batch=signal_during_step_6).fit()
    assert checkpoint.problem(tmp_path / "run" / "checkpoints" / "step-00000006") is None
    again = make_trainer(tmp_path / "run", dist_info)
    assert again.fit()["resumed_from"] == 6
    assert equal(adapter_state(full), adapter_state(again))


def test_checkpoint_request_without_stop_carries_on(tmp_path, dist_info):
    def signal_during_step_3(position):
        if position == 3:
            preemption.request_checkpoint(then_stop=False)

    summary = make_trainer(tmp_path, dist_info, on_batch=signal_during_step_3, save_every=0,
                           keep_last=5).fit()
    assert summary["steps"] == 12
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-00000003", "step-00000012"]
