"""CROSS_ATTENTIONS: shapes, frame masks, and separable attention against a hand reference."""
import math

import pytest
import torch

from fcap.config.schema import build_component
from registry import CROSS_ATTENTIONS

DIM, VDIM, S = 16, 12, 9


def make(name, **options):
    torch.manual_seed(0)
    defaults = {"perceiver": {"num_latents": 4, "depth": 2, "resampler_heads": 2,
                              "resampler_dim_head": 4}}.get(name, {})
    comp = build_component(CROSS_ATTENTIONS, {"name": name, "heads": 2, **defaults, **options})
    return comp.build(dim=DIM, visual_dim=VDIM).eval()


@pytest.mark.parametrize("name", ["full", "separable", "perceiver"])
@pytest.mark.parametrize("t", [1, 8])
def test_output_shape(name, t):
    x, v = torch.randn(3, 5, DIM), torch.randn(3, t, S, VDIM)
    assert make(name)(x, v).shape == (3, 5, DIM)


@pytest.mark.parametrize("name", ["full", "separable", "perceiver"])
def test_padded_frames_change_nothing(name):
    attn = make(name)
    torch.manual_seed(1)
    x, v = torch.randn(3, 5, DIM), torch.randn(3, 6, S, VDIM)
    lengths = [6, 2, 4]
    mask = torch.arange(6)[None, :] < torch.tensor(lengths)[:, None]
    garbage = v.clone()
    garbage[~mask] = 1e4 * torch.randn_like(garbage[~mask])  # huge values: would win any max-pool
    out = attn(x, v, frame_mask=mask)
    assert torch.equal(out, attn(x, garbage, frame_mask=mask))
    for i, n in enumerate(lengths):  # and each row equals the unpadded video alone
        alone = attn(x[i:i + 1], v[i:i + 1, :n])
        assert torch.allclose(out[i:i + 1], alone, atol=1e-5), (name, i)


@pytest.mark.parametrize("name", ["full", "separable", "perceiver"])
def test_a_video_without_real_frames_is_refused(name):
    x, v = torch.randn(2, 3, DIM), torch.randn(2, 2, S, VDIM)
    mask = torch.tensor([[True, False], [False, False]])
    with pytest.raises(ValueError, match=r"samples \[1\] have no real frame"):
        make(name)(x, v, frame_mask=mask)


def _layer_norm(z, ln):
    mu = z.mean(-1, keepdim=True)
    var = ((z - mu) ** 2).mean(-1, keepdim=True)
    return (z - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def _attend(xq, tokens, branch):
    """Plain multi-head softmax attention, one sample, explicit per head."""
    h, dh = branch.heads, branch.dim_head
    wk, wv = branch.to_kv.weight.split(h * dh, dim=0)
    q, k, v = xq @ branch.to_q.weight.T, tokens @ wk.T, tokens @ wv.T
    heads = []
    for j in range(h):
        cols = slice(j * dh, (j + 1) * dh)
        scores = q[:, cols] @ k[:, cols].T / math.sqrt(dh)
        weights = torch.exp(scores - scores.max(-1, keepdim=True).values)
        heads.append((weights / weights.sum(-1, keepdim=True)) @ v[:, cols])
    return torch.cat(heads, dim=-1)


def separable_reference(attn, x, v, lengths):
    """Sec. 4.2 written out per sample on the real frames only."""
    rows = []
    for i, n in enumerate(lengths):
        video = v[i, :n]  # (t, s, d)
        per_frame = _layer_norm(video.max(dim=1).values, attn.norm_time)  # max over space
        per_patch = _layer_norm(video.max(dim=0).values, attn.norm_space)  # max over time
        both = torch.cat([_attend(x[i], per_frame, attn.time), _attend(x[i], per_patch, attn.space)], -1)
        rows.append(both @ attn.to_out.weight.T)
    return torch.stack(rows)


def test_separable_matches_hand_written_reference():
    attn = make("separable")
    with torch.no_grad():  # non-trivial LayerNorm affine params
        for ln in (attn.norm_time, attn.norm_space):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.5, 0.5)
    torch.manual_seed(2)
    x = torch.randn(2, 4, DIM)
    v = torch.arange(2 * 5 * S * VDIM, dtype=torch.float32).reshape(2, 5, S, VDIM).sin()
    lengths = [5, 3]
    mask = torch.arange(5)[None, :] < torch.tensor(lengths)[:, None]
    out = attn(x, v, frame_mask=mask)
    assert torch.allclose(out, separable_reference(attn, x, v, lengths), atol=1e-5)


def test_separable_sees_every_frame_and_patch():
    # Attention over time has no positions of its own (Sec. 4.2): frame order reaches
    # it only through the encoder's time embeddings, so test content, not order.
    attn = make("separable")
    x, v = torch.randn(1, 3, DIM), torch.randn(1, 4, S, VDIM)
    base = attn(x, v)
    changed = v.clone()
    changed[0, 3, 5] += 5.0  # one patch of the last frame
    assert not torch.allclose(base, attn(x, changed))
    assert torch.allclose(base, attn(x, v[:, [1, 0, 2, 3]]), atol=1e-6)


def test_registry_contract_every_attention_builds_from_cfg_dim_visual_dim():
    for entry in CROSS_ATTENTIONS:
        if entry.name.startswith("test-"):
            continue
        module = entry.obj(entry.config(heads=2), dim=DIM, visual_dim=VDIM)
        out = module(torch.randn(1, 2, DIM), torch.randn(1, 3, S, VDIM), frame_mask=None)
        assert out.shape == (1, 2, DIM), entry.name


def test_perceiver_refuses_more_frames_than_time_embeddings():
    attn = make("perceiver", max_frames=4)
    with pytest.raises(ValueError, match="perceiver: 5 frames exceed max_frames=4"):
        attn(torch.randn(1, 2, DIM), torch.randn(1, 5, S, VDIM))
