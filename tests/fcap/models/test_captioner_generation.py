"""Generation through transformers generate(): visual K/V reuse, text KV cache, greedy / nucleus / beam."""
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


def test_nucleus_is_reproducible_under_a_seed_and_leaves_the_global_rng_alone(captioner, feats):
    v, mask = feats
    cfg = DecodingConfig(strategy="nucleus", max_new_tokens=12, top_p=0.95, seed=7)
    state = torch.get_rng_state()
    a = captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=cfg)
    torch.manual_seed(1234)  # another global state: same captions
    b = captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=cfg)
    assert torch.equal(a, b)
    torch.set_rng_state(state)
    captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=cfg)
    assert torch.equal(torch.get_rng_state(), state)
    others = [captioner.generate_ids(visual_features=v, frame_mask=mask,
                                     decoding=DecodingConfig(strategy="nucleus", max_new_tokens=12,
                                                             top_p=0.95, seed=s)) for s in (8, 9)]
    assert any(o.shape != a.shape or not torch.equal(o, a) for o in others)


def test_nucleus_equals_transformers_sampling_under_the_same_seed(captioner, feats):
    v, mask = feats
    cfg = DecodingConfig(strategy="nucleus", max_new_tokens=12, top_p=0.8, temperature=0.7, seed=3)
    ours = captioner.generate_ids(visual_features=v, frame_mask=mask, decoding=cfg)
    lm = captioner.lm
    torch.manual_seed(3)
    ref = lm.model.generate(torch.full((3, 1), lm.bos_token_id), do_sample=True, top_p=0.8, top_k=0,
                            temperature=0.7, max_new_tokens=12, eos_token_id=lm.eos_token_id,
                            pad_token_id=lm.pad_token_id,
                            visual_memory=captioner.visual_memories(v, mask))[:, 1:]
    assert torch.equal(ours, ref)


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


def test_generate_from_pixels_equals_stepwise_argmax_and_depends_on_the_video(captioner):
    torch.manual_seed(0)
    pixels = torch.randn(2, 1, 3, 32, 32)
    ids = captioner.generate_ids(pixel_values=pixels, decoding=GREEDY)
    with torch.no_grad():
        ref = greedy_without_any_cache(captioner, captioner.encode_visual(pixels), None, ids.shape[1])
    assert torch.equal(ids, ref)  # no EOS within 10 tokens for these two videos
    texts = captioner.generate(pixel_values=pixels, decoding=GREEDY)
    assert texts == captioner.decode(ids) and texts[0] != texts[1]
    closed = tiny_model(init=0.0)  # gates shut: the frozen LM alone, the same caption for both
    same = closed.generate(pixel_values=pixels, decoding=GREEDY)
    assert same[0] == same[1]


def _beam_reference(model, v, mask, *, num_beams, max_new_tokens, length_penalty):
    """transformers generate() called by hand: memory of the videos repeated once per beam."""
    lm = model.lm
    memory = model.visual_memories(v.repeat_interleave(num_beams, 0),
                                   mask.repeat_interleave(num_beams, 0))
    return lm.model.generate(torch.full((v.shape[0], 1), lm.bos_token_id), num_beams=num_beams,
                             max_new_tokens=max_new_tokens, length_penalty=length_penalty,
                             eos_token_id=lm.eos_token_id, pad_token_id=lm.pad_token_id,
                             do_sample=False, visual_memory=memory)[:, 1:]


@pytest.mark.parametrize("length_penalty", [1.0, 0.0])
def test_beam_equals_transformers_generate_on_20_videos(length_penalty):
    model = tiny_model(seed=2, init=2.0)
    torch.manual_seed(9)
    v = torch.randn(20, 3, 16, 64)
    mask = torch.ones(20, 3, dtype=torch.bool)
    mask[::3, 2] = False
    eos = model.lm.eos_token_id
    model.lm.eos_token_id = 231  # a token these models emit: beams finish at different steps
    try:
        cfg = DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=12, length_penalty=length_penalty)
        ours = model.generate_ids(visual_features=v, frame_mask=mask, decoding=cfg)
        ref = _beam_reference(model, v, mask, num_beams=3, max_new_tokens=12,
                              length_penalty=length_penalty)
    finally:
        model.lm.eos_token_id = eos
    assert torch.equal(ours, ref)
    assert len({tuple(r) for r in ours.tolist()}) > 1  # the videos matter


def test_beam_with_closed_gates_equals_the_plain_lm_beam_search(feats):
    from transformers import OPTForCausalLM

    v, mask = feats
    closed = tiny_model(init=0.0)
    cfg = DecodingConfig(strategy="beam", num_beams=4, max_new_tokens=10)
    ours = closed.generate_ids(visual_features=v, frame_mask=mask, decoding=cfg)
    plain = OPTForCausalLM.from_pretrained(closed.lm.model.name_or_path).eval()
    lm = closed.lm
    ref = plain.generate(torch.full((3, 1), lm.bos_token_id), num_beams=4, max_new_tokens=10,
                         eos_token_id=lm.eos_token_id, pad_token_id=lm.pad_token_id, do_sample=False)
    assert torch.equal(ours, ref[:, 1:])
