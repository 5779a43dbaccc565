"""Generation: visual K/V reuse, text KV cache, greedy / nucleus / beam."""
import pytest
import torch

from fcap.models import DecodingConfig
from tiny_models import tiny_model

GREEDY = DecodingConfig(strategy="greedy", max_new_tokens=10)


@pytest.fixture(scope="module")
def feats():
    torch.manual_seed(5)
    return torch.randn(3, 4, 16, 64), torch.tensor([[True] * 4, [True, True, False, False],
                                                    [True, False, False, False]])


def greedy_without_any_cache(model, feats, mask, n):
    """Re-run the whole prefix every step: no text KV cache, no visual reuse."""
    tokens = torch.full((feats.shape[0], 1), model.lm.bos_token_id)
    for _ in range(n):
        logits = model(input_ids=tokens, visual_features=feats, frame_mask=mask).logits
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tokens[:, 1:]


@pytest.mark.parametrize("attention", ["separable", "full", "perceiver"])
def test_greedy_with_visual_reuse_equals_recomputing(attention, feats):
    model = tiny_model(attention=attention) if attention != "separable" else tiny_model()
    v, mask = feats
    reused = model.generate_ids(visual_features=v, frame_mask=mask, decoding=GREEDY)
    recomputed = model.generate_ids(visual_features=v, frame_mask=mask, decoding=GREEDY,
                                    reuse_visual=False)
    assert torch.equal(reused, recomputed)
    assert reused.shape[1] >= 2


def test_greedy_with_kv_cache_equals_full_recomputation(captioner, feats):
    v, mask = feats
    ids = captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=GREEDY)
    with torch.no_grad():
        ref = greedy_without_any_cache(captioner, v, mask, ids.shape[1])
    eos, pad = captioner.lm.eos_token_id, captioner.lm.pad_token_id
    for row, ref_row in zip(ids, ref):  # compare up to and including the first EOS
        end = (row == eos).nonzero()
        n = int(end[0]) + 1 if len(end) else len(row)
        assert torch.equal(row[:n], ref_row[:n])
        assert (row[n:] == pad).all()


def test_visual_memory_is_computed_once_when_reused(captioner, feats):
    v, mask = feats
    calls = []
    adapter = captioner.adapters()[1]
    handle = adapter.xattn.register_forward_pre_hook(lambda *a: calls.append(1))
    original = adapter.xattn.prepare
    adapter.xattn.prepare = lambda *a, **k: (calls.append("prepare"), original(*a, **k))[1]
    try:
        captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=GREEDY)
        once = calls.count("prepare")
        calls.clear()
        captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=GREEDY, reuse_visual=False)
        every_step = calls.count("prepare")
    finally:
        del adapter.xattn.prepare
        handle.remove()
    assert once == 1 and every_step > 2


def test_nucleus_is_deterministic_under_a_seed(captioner, feats):
    v, mask = feats
    cfg = DecodingConfig(strategy="nucleus", max_new_tokens=12, top_p=0.95, seed=7)
    a = captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=cfg)
    b = captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=cfg)
    assert torch.equal(a, b)
    others = [captioner.generate_ids(visual_features=v, frame_mask=mask,
                                     decoding=DecodingConfig(strategy="nucleus", max_new_tokens=12,
                                                             top_p=0.95, seed=s)) for s in (8, 9)]
    assert any(o.shape != a.shape or not torch.equal(o, a) for o in others)


def test_nucleus_with_tiny_top_p_is_greedy(captioner, feats):
    v, mask = feats
    nucleus = DecodingConfig(strategy="nucleus", max_new_tokens=10, top_p=1e-6, seed=3)
    assert torch.equal(captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=nucleus),
                       captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=GREEDY))


def test_beam_runs_and_one_beam_is_greedy(captioner, feats):
    v, mask = feats
    beam = DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=10)
    texts = captioner.generate(visual_features=v, frame_mask=mask, decoding=beam)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    one = DecodingConfig(strategy="beam", num_beams=1, max_new_tokens=10)
    assert torch.equal(captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=one),
                       captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=GREEDY))


def test_beam_finds_a_sequence_at_least_as_likely_as_greedy(captioner, feats):
    # With length_penalty 0 the score is the plain sum of log-probs, which only falls as
    # a sequence grows; so the best beam can never score below the greedy sequence.
    v, mask = feats
    eos = captioner.lm.eos_token_id

    def logprob(ids):
        tokens = torch.cat([torch.full((ids.shape[0], 1), captioner.lm.bos_token_id), ids], dim=1)
        with torch.no_grad():
            logits = captioner(input_ids=tokens, visual_features=v, frame_mask=mask).logits
        lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, tokens[:, 1:, None]).squeeze(-1)
        after_eos = (ids == eos).long().cumsum(1) - (ids == eos).long() > 0
        return lp.masked_fill(after_eos, 0.0).sum(-1)

    beam = captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=DecodingConfig(
        strategy="beam", num_beams=4, max_new_tokens=8, length_penalty=0.0))
    greedy = captioner.generate_ids(visual_features=v, frame_mask=mask,
                                    decoding=DecodingConfig(max_new_tokens=8))
    assert (logprob(beam) >= logprob(greedy) - 1e-4).all()
    assert not torch.equal(beam[:, :1], torch.full_like(beam[:, :1], captioner.lm.pad_token_id))


def test_decoding_config_validates():
    with pytest.raises(ValueError, match=r"top_p: must be in \(0, 1\], got 1.5"):
        DecodingConfig(top_p=1.5)
    with pytest.raises(ValueError, match="max_new_tokens: must be >= 1"):
        DecodingConfig(max_new_tokens=0)


def test_generate_from_pixels(captioner):
    torch.manual_seed(0)
    texts = captioner.generate(pixel_values=torch.randn(2, 1, 3, 32, 32), decoding=GREEDY)
    assert len(texts) == 2
