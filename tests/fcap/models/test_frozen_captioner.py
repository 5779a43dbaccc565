"""FrozenCaptioner: gates at 0 give the frozen LM, frozen means frozen, no graph below adapters."""
import pytest
import torch
from transformers import OPTForCausalLM

from fcap.models.adapter import AdaptedLayer
from tiny_models import tiny_model


@pytest.fixture(scope="module")
def closed():
    return tiny_model(init=0.0)


def test_gate_init_zero_gives_the_frozen_lm_exactly(closed, batch):
    plain = OPTForCausalLM.from_pretrained(closed.lm.model.name_or_path).eval()
    with torch.no_grad():
        ours = closed(**batch).logits
        ref = plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.equal(ours, ref)


def test_gate_init_one_changes_the_logits(captioner, batch):
    plain = OPTForCausalLM.from_pretrained(captioner.lm.model.name_or_path).eval()
    with torch.no_grad():
        ours = captioner(**batch).logits
        ref = plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert (ours - ref).abs().max() > 1e-3


def test_layers_are_wrapped_explicitly(captioner):
    for i, layer in enumerate(captioner.lm.layers):
        assert isinstance(layer, AdaptedLayer) == (i in (1, 3))
    assert type(captioner.lm.layers[1].layer).__name__ == "OPTDecoderLayer"


def test_only_adapter_parameters_are_trainable(captioner):
    trainable = {id(p) for p in captioner.trainable_parameters()}
    adapter_params = {id(p) for a in captioner.adapters().values() for p in a.parameters()}
    assert trainable == adapter_params and trainable
    for name, p in captioner.named_parameters():
        assert p.requires_grad == (id(p) in trainable), name


def test_train_mode_keeps_frozen_parts_in_eval(captioner):
    captioner.train()
    try:
        assert not captioner.lm.training and not captioner.visual.training
        assert all(m.training for a in captioner.adapters().values() for m in a.modules())
        assert not any(m.training for m in captioner.lm.layers[1].layer.modules())
    finally:
        captioner.eval()


def test_optimizer_step_leaves_frozen_weights_bitwise_unchanged(batch):
    model = tiny_model(seed=3)
    model.train()
    frozen = {k: v.clone() for k, v in model.state_dict().items() if ".adapter." not in k}
    adapters_before = [p.detach().clone() for p in model.trainable_parameters()]
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    model(**batch).loss.backward()
    opt.step()
    after = model.state_dict()
    for k, v in frozen.items():
        assert torch.equal(after[k], v), k
    moved = [not torch.equal(a, p) for a, p in zip(adapters_before, model.trainable_parameters())]
    assert all(moved)
    assert all(p.grad is None for n, p in model.named_parameters() if ".adapter." not in n)


def test_no_autograd_below_the_first_adapter(captioner, batch):
    seen = {}

    def hook(index):
        def record(module, args, kwargs, output):
            seen[index] = (output.requires_grad, output.grad_fn is not None)
        return record

    handles = [layer.register_forward_hook(hook(i), with_kwargs=True)
               for i, layer in enumerate(captioner.lm.layers)]
    try:
        captioner.train()
        captioner(**batch).loss.backward()
    finally:
        captioner.eval()
        captioner.zero_grad(set_to_none=True)
        for h in handles:
            h.remove()
    # below the first adapter (layer 1) nothing requires grad: no graph, with grad mode on
    assert seen[0] == (False, False)
    assert seen[1] == (True, True) and seen[3] == (True, True)


def test_adapter_index_beyond_the_lm_is_refused():
    with pytest.raises(ValueError, match=r"index 7 out of range; the LM 'tiny' has 4 layers \(0..3\)"):
        tiny_model(layers=(1, 7))


def test_exactly_one_visual_input(captioner, batch):
    text = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with pytest.raises(ValueError, match="exactly one of pixel_values"):
        captioner(**text)


def test_pixels_and_cached_features_give_the_same_logits(captioner, batch):
    torch.manual_seed(4)
    pixels = torch.randn(3, 4, 3, 32, 32)
    mask = torch.tensor([[True] * 4, [True, True, False, False], [True, False, False, False]])
    with torch.no_grad():
        feats = captioner.encode_visual(pixels, mask)
        a = captioner(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      pixel_values=pixels, frame_mask=mask).logits
        b = captioner(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      visual_features=feats, frame_mask=mask).logits
    assert feats.shape == (3, 4, 16, 64)
    assert torch.equal(a, b)


def test_prepare_text_bos_eos_and_labels(captioner):
    out = captioner.prepare_text(["a red ball", "a blue square moves left"], max_length=6)
    ids, mask, labels = out["input_ids"], out["attention_mask"], out["labels"]
    bos, eos, pad = captioner.lm.bos_token_id, captioner.lm.eos_token_id, captioner.lm.pad_token_id
    assert (ids[:, 0] == bos).all() and (labels[:, 0] == -100).all()
    assert ids.shape[1] <= 6 and ids[1, -1] == eos  # truncated, EOS kept
    n0 = int(mask[0].sum())
    assert ids[0, n0 - 1] == eos and labels[0, n0 - 1] == eos
    assert (ids[0, n0:] == pad).all() and (labels[0, n0:] == -100).all()
    assert captioner.decode(ids[:1]) == ["a red ball"]


def test_loss_ignores_padding(captioner):
    feats = torch.randn(1, 4, 16, 64)
    one = captioner.prepare_text(["a red ball"], max_length=16)
    two = captioner.prepare_text(["a red ball", "a man is cooking in a kitchen"], max_length=16)
    with torch.no_grad():
        a = captioner(**one, visual_features=feats).loss
        b = captioner(**{k: v[:1] for k, v in two.items()}, visual_features=feats).loss
    assert torch.allclose(a, b, atol=1e-6)


def test_runs_under_bf16_autocast(captioner, batch):
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = captioner(**batch)
        texts = captioner.generate(visual_features=batch["visual_features"])
    assert torch.isfinite(out.loss) and len(texts) == 3
