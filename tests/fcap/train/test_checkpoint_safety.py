"""Checkpoints fail loudly and cleanly: a full disk, and pickled code in DeepSpeed's files."""
import errno
import hashlib
import json
import os
import shutil
import subprocess

import pytest
import torch

from fcap.train import TrainingInterrupted, checkpoint
from fcap.train.checkpoint import CheckpointError

from train_toys import adapter_state, make_trainer


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_disk_full_mid_save_names_device_file_and_size_and_removes_the_partial_folder(
        tmp_path, dist_info):
    trainer = make_trainer(tmp_path, dist_info, steps=8, save_every=4)
    writer = trainer.engine.checkpoint_engine
    real_save = writer.save

    def fill_up(state_dict, path):
        if "step-00000008" in path and "optim_states" in path:  # the second of DeepSpeed's files
            with open(path, "wb") as f:
                f.write(b"\0" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(state_dict, path)

    writer.save = fill_up
    with pytest.raises(CheckpointError) as err:
        trainer.fit()
    msg = str(err.value)
    ckpts = tmp_path / "checkpoints"
    assert msg.startswith("no space left on ")
    assert " (mounted at /" in msg  # the file system holding the run
    assert (f" while writing {ckpts}/.tmp-step-00000008/deepspeed/" in msg
            and "optim_states.pt (needed ~" in msg)
    # the estimate is at least the previous checkpoint's size (a few KB here)
    needed = float(msg.split("(needed ~")[1].split(" MB")[0])
    step4 = sum(p.stat().st_size for p in (ckpts / "step-00000004").rglob("*") if p.is_file())
    assert needed >= round(step4 / 2**20, 2) > 0
    assert "earlier checkpoints are intact" in msg
    assert names(ckpts) == ["step-00000004"]  # no .tmp-step-00000008 left behind
    assert checkpoint.problem(ckpts / "step-00000004") is None
    # with space again the stage resumes from the intact checkpoint
    again = make_trainer(tmp_path, dist_info, steps=8, save_every=4).fit()
    assert again["resumed_from"] == 4 and again["steps"] == 8
    assert names(ckpts) == ["step-00000004", "step-00000008"]


def test_a_failure_that_is_not_about_space_keeps_its_own_error(tmp_path, dist_info):
    trainer = make_trainer(tmp_path, dist_info, steps=4, save_every=4)
    writer = trainer.engine.checkpoint_engine

    def broken(state_dict, path):
        raise OSError(errno.EIO, "Input/output error")

    writer.save = broken
    with pytest.raises(OSError, match="Input/output error"):
        trainer.fit()
    assert names(tmp_path / "checkpoints") == []


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 1 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    # lazy: the failed torch.save's file may still be open until its traceback is collected
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_really_full_tmpfs_gives_the_same_clear_error(tmp_path, dist_info, tiny_tmpfs):
    # torch.save's zip writer reports ENOSPC as "RuntimeError: ... unexpected pos ...", no errno
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoints").symlink_to(tiny_tmpfs)

    def fill_after_step_4(position):
        if position == 6:  # step-4 checkpoint written; leave no room for step 8's
            with open(tiny_tmpfs / "filler", "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\0" * 4096)
                except OSError:
                    pass
                f.truncate(f.tell() - 16 * 1024)  # room for the marker, not for DeepSpeed's files

    with pytest.raises(CheckpointError) as err:
        make_trainer(run_dir, dist_info, steps=8, save_every=4, on_batch=fill_after_step_4).fit()
    msg = str(err.value)
    assert msg.startswith(f"no space left on tmpfs (mounted at {tiny_tmpfs})"), msg
    assert " while writing " in msg and "/.tmp-step-00000008/" in msg and "(needed ~" in msg, msg
    assert names(tiny_tmpfs) == ["filler", "step-00000004"]
    assert type(err.value.__cause__) is RuntimeError  # no errno: the free-space rule decided


class RunsCode:
    """Unpickling this calls open(path, "w"): a stand-in for any code in a pickle."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def rewrite_manifest(ckpt):
    """What someone who can change a checkpoint can also do: make the manifest match."""
    manifest = json.loads((ckpt / "MANIFEST.json").read_text())
    for rel, entry in manifest["files"].items():
        data = (ckpt / rel).read_bytes()
        entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    (ckpt / "MANIFEST.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("kind", ["model_states", "optim_states"])
def test_a_pickled_object_in_a_deepspeed_file_is_refused_not_run(tmp_path, dist_info, kind):
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match="stopped at step 4"):
        make_trainer(run, dist_info, stop_after=4).fit()
    ckpt = run / "checkpoints" / "step-00000004"
    (target,) = (ckpt / "deepspeed").glob(f"*{kind}.pt")
    state = torch.load(target, weights_only=False)
    ran = tmp_path / "code-ran"
    state["extra"] = RunsCode(ran)
    torch.save(state, target)
    rewrite_manifest(ckpt)
    assert checkpoint.problem(ckpt) is None  # the manifest cannot tell

    with pytest.raises(CheckpointError) as err:
        make_trainer(run, dist_info).fit()
    assert not ran.exists()
    msg = str(err.value)
    assert f"checkpoint {ckpt} holds pickled objects fcap does not load: io.open" in msg
    assert "weights_only=True" in msg


def test_bf16_zero1_resumes_bitwise_under_weights_only_and_refuses_an_injected_object(
        tmp_path, dist_info):
    # bf16's optimizer file pickles DeepSpeed's loss scaler, ZeRO stage and fragment
    # addresses: all on the allow-list, so an honest checkpoint still resumes exactly
    opts = {"precision": "bf16", "zero_stage": 1}
    full = make_trainer(tmp_path / "full", dist_info, **opts)
    full.fit()
    with pytest.raises(TrainingInterrupted, match="stopped at step 6"):
        make_trainer(tmp_path / "resumed", dist_info, stop_after=6, **opts).fit()
    shutil.copytree(tmp_path / "resumed", tmp_path / "tampered")
    ckpt = tmp_path / "tampered" / "checkpoints" / "step-00000006"
    (optim,) = (ckpt / "deepspeed").glob("bf16_*optim_states.pt")
    state = torch.load(optim, weights_only=False)
    state["extra"] = RunsCode(tmp_path / "code-ran")
    torch.save(state, optim)
    rewrite_manifest(ckpt)
    with pytest.raises(CheckpointError, match="fcap does not load: io.open"):
        make_trainer(tmp_path / "tampered", dist_info, **opts).fit()
    assert not (tmp_path / "code-ran").exists()

    again = make_trainer(tmp_path / "resumed", dist_info, **opts)
    assert again.fit()["resumed_from"] == 6
    assert all(torch.equal(a, b) for a, b in zip(adapter_state(full).values(),
                                                 adapter_state(again).values()))


def test_fp16_dynamic_loss_scaler_is_on_the_allow_list(tmp_path):
    # fp16 needs a GPU in DeepSpeed; its optimizer file holds a DynamicLossScaler
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler

    scaler = DynamicLossScaler(init_scale=2**16, scale_window=1000, min_scale=1,
                               delayed_shift=2, consecutive_hysteresis=False)
    torch.save({"loss_scaler": scaler}, tmp_path / "optim.pt")
    loaded = checkpoint.WeightsOnlyLoads(None).load(str(tmp_path / "optim.pt"))["loss_scaler"]
    assert vars(loaded) == vars(scaler)
