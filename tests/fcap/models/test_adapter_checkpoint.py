"""Adapter checkpoints: weights-only safetensors + manifest; base-model mismatch refused."""
import json

import pytest
import torch

from tiny_models import tiny_model


def test_round_trip_gives_identical_logits(tmp_path, batch):
    trained = tiny_model(seed=11)
    out = trained.save_adapters(tmp_path / "adapters")
    assert sorted(p.name for p in out.iterdir()) == ["adapters.safetensors", "manifest.json"]
    fresh = tiny_model(seed=12)  # different adapter init
    with torch.no_grad():
        before = fresh(**batch).logits
        fresh.load_adapters(out)
        after, ref = fresh(**batch).logits, trained(**batch).logits
    assert not torch.equal(before, ref)
    assert torch.equal(after, ref)


def test_checkpoint_holds_adapter_weights_only(tmp_path, captioner):
    from safetensors.torch import load_file

    captioner.save_adapters(tmp_path)
    state = load_file(str(tmp_path / "adapters.safetensors"))
    n_adapter = sum(p.numel() for p in captioner.trainable_parameters())
    assert sum(t.numel() for t in state.values()) == n_adapter
    assert all(k.startswith(("layers.1.", "layers.3.")) for k in state)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["lm"]["source"] == "tiny" and len(manifest["lm"]["weights_hash"]) == 64
    assert manifest["visual"]["family"] == "timesformer"
    assert manifest["adapters"]["layers"] == [1, 3]


def test_a_different_base_lm_is_refused_naming_both(tmp_path, captioner):
    captioner.save_adapters(tmp_path)
    other = tiny_model(lm_seed=1)  # same dims, other random weights
    mine, theirs = captioner.lm.identity()["weights_hash"], other.lm.identity()["weights_hash"]
    assert mine != theirs
    with pytest.raises(ValueError) as err:
        other.load_adapters(tmp_path)
    msg = str(err.value)
    assert "adapters were trained on lm opt 'tiny'" in msg and "this model's lm is opt 'tiny'" in msg
    assert f"weights {mine[:12]}" in msg and f"weights {theirs[:12]}" in msg


def test_a_different_adapter_layout_is_refused(tmp_path, captioner):
    captioner.save_adapters(tmp_path)
    other = tiny_model(layers=(2, 3))
    with pytest.raises(ValueError, match=r"adapters config .*'layers': \[1, 3\].* differs from this "
                                         r"model's model.adapters .*'layers': \[2, 3\]"):
        other.load_adapters(tmp_path)


def test_missing_manifest_is_a_clear_error(tmp_path, captioner):
    with pytest.raises(FileNotFoundError, match="no manifest.json; not an fcap adapter checkpoint"):
        captioner.load_adapters(tmp_path)
