"""The tiny OPT source: tokenizer, deterministic build, from_pretrained round trip."""
import os

import pytest
import torch
from transformers import AutoTokenizer, OPTForCausalLM

from fcap.config.schema import build_component
from fcap.models import sources, tiny_cache
from fcap.models.tiny import COLOURS, DIRECTIONS, SHAPES, TinyOPT, build_tiny_opt
from registry import MODELS


@pytest.fixture(scope="module")
def lm():
    return build_component(MODELS, {"name": "opt", "source": "tiny"}).build()


def test_tiny_lm_loads_from_a_saved_hf_directory(lm, fcap_cache):
    path = lm.model.name_or_path
    assert os.path.isdir(path) and path.startswith(str(fcap_cache))
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(os.listdir(path))
    assert lm.model.config.hidden_size == 64 and len(lm.layers) == 4
    again = OPTForCausalLM.from_pretrained(path)
    ids = torch.tensor([[2, 50, 60, 70]])
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).logits, lm.model(input_ids=ids).logits)


def test_tokenizer_has_opt_special_tokens_and_round_trips(lm):
    tok = AutoTokenizer.from_pretrained(lm.model.name_or_path)
    assert 450 <= len(tok) <= 512
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (2, 1, 2, 3)
    assert tok("a red circle").input_ids[0] == 2  # OPT prepends </s> as BOS
    text = "a purple triangle moves backward, then the chef is cooking!"
    ids = tok(text, add_special_tokens=False).input_ids
    assert tok.decode(ids) == text
    for word in COLOURS + SHAPES + DIRECTIONS:  # trained on these: few pieces each
        assert len(tok(" " + word, add_special_tokens=False).input_ids) <= 2, word


def test_tiny_build_is_deterministic(tmp_path, monkeypatch):
    dims = TinyOPT(hidden_size=32, num_layers=2, num_heads=2, ffn_dim=64)
    hashes = []
    for name in ("a", "b"):
        monkeypatch.setenv("FCAP_CACHE", str(tmp_path / name))
        path = tiny_cache.tiny_dir("model.lm.source", dims, build_tiny_opt)
        hashes.append(sources.weights_hash(OPTForCausalLM.from_pretrained(path)))
    assert hashes[0] == hashes[1]
    other = tiny_cache.tiny_dir("model.lm.source", TinyOPT(hidden_size=32, num_layers=2,
                                                           num_heads=2, ffn_dim=64, seed=1),
                                build_tiny_opt)
    assert sources.weights_hash(OPTForCausalLM.from_pretrained(other)) != hashes[0]


def test_stock_decoder_hands_visual_memory_to_every_layer(lm):
    # What the adapters rely on (fcap/models/opt_causal_lm.py): transformers' OPT forward
    # passes extra keyword arguments on to each decoder layer, and ignores them otherwise.
    ids = torch.tensor([[2, 40, 41, 42, 43], [2, 50, 51, 1, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    memory, seen = {"marker": object()}, []
    handles = [layer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("visual_memory")), with_kwargs=True)
        for layer in lm.layers]
    try:
        with torch.no_grad():
            ours = lm.model(input_ids=ids, attention_mask=mask, visual_memory=memory).logits
    finally:
        for h in handles:
            h.remove()
    assert len(seen) == len(lm.layers) and all(m is memory for m in seen)
    plain = OPTForCausalLM.from_pretrained(lm.model.name_or_path).eval()
    with torch.no_grad():
        assert torch.equal(ours, plain(input_ids=ids, attention_mask=mask).logits)


def test_missing_local_directory_is_named():
    with pytest.raises(FileNotFoundError, match=r"model.lm.source: no such model directory '/nope/opt'"):
        build_component(MODELS, {"name": "opt", "source": "/nope/opt"}).build()


def test_a_home_relative_directory_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ckpt").mkdir()
    found = sources.resolve_source("~/ckpt", key="model.lm.source", tiny_options=None,
                                   build_tiny=None)
    assert found == str(tmp_path / "ckpt")
    with pytest.raises(FileNotFoundError, match=r"model.lm.source: no such model directory '~/no'"):
        sources.resolve_source("~/no", key="model.lm.source", tiny_options=None, build_tiny=None)
    assert sources.resolve_source("facebook/opt-1.3b", key="k", tiny_options=None,
                                  build_tiny=None) == "facebook/opt-1.3b"  # a hub id


def test_models_registry_contract_roles():
    for name, role in (("opt", "lm"), ("timesformer", "visual"), ("frozen_captioner", "captioner")):
        assert MODELS.get(name).obj.role == role
