"""TimeSformer: converter from the original layout, and the encoder for any clip length.

The reference is the original facebookresearch TimeSformer forward (vit.py,
divided space-time), written out here on the ORIGINAL key layout, so the
converted transformers model is checked against independent code.
"""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from fcap.config.schema import build_component
from fcap.models.convert_timesformer import convert, convert_state_dict
from registry import MODELS

D, HEADS, PATCH, IMG, FRAMES, BLOCKS, MLP = 16, 2, 4, 8, 4, 2, 32  # s = (8/4)^2 = 4 patches


def original_state_dict(seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.2  # noqa: E731
    sd = {"model.patch_embed.proj.weight": r(D, 3, PATCH, PATCH), "model.patch_embed.proj.bias": r(D),
          "model.cls_token": r(1, 1, D), "model.pos_embed": r(1, (IMG // PATCH) ** 2 + 1, D),
          "model.time_embed": r(1, FRAMES, D), "model.norm.weight": 1 + r(D), "model.norm.bias": r(D),
          "model.head.weight": r(10, D), "model.head.bias": r(10)}
    for i in range(BLOCKS):
        p = f"model.blocks.{i}."
        for norm in ("norm1", "temporal_norm1", "norm2"):
            sd[p + norm + ".weight"], sd[p + norm + ".bias"] = 1 + r(D), r(D)
        for attn in ("attn", "temporal_attn"):
            sd[p + attn + ".qkv.weight"], sd[p + attn + ".qkv.bias"] = r(3 * D, D), r(3 * D)
            sd[p + attn + ".proj.weight"], sd[p + attn + ".proj.bias"] = r(D, D), r(D)
        sd[p + "temporal_fc.weight"], sd[p + "temporal_fc.bias"] = r(D, D), r(D)
        sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"] = r(MLP, D), r(MLP)
        sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"] = r(D, MLP), r(D)
    return sd


def _ln(x, sd, k):
    return F.layer_norm(x, (D,), sd[k + ".weight"], sd[k + ".bias"], eps=1e-6)


def _lin(x, sd, k):
    return F.linear(x, sd[k + ".weight"], sd[k + ".bias"])


def _attn(x, sd, k):
    b, n, _ = x.shape
    qkv = _lin(x, sd, k + ".qkv").reshape(b, n, 3, HEADS, D // HEADS).permute(2, 0, 3, 1, 4)
    a = ((qkv[0] @ qkv[1].transpose(-2, -1)) * (D // HEADS) ** -0.5).softmax(-1)
    return _lin((a @ qkv[2]).transpose(1, 2).reshape(b, n, D), sd, k + ".proj")


def reference_forward(sd, video):
    """Original TimeSformer forward_features (no final pooling): video (B, T, 3, H, W) -> (B, 1+N*T, D)."""
    B, T = video.shape[:2]
    x = F.conv2d(video.flatten(0, 1), sd["model.patch_embed.proj.weight"], sd["model.patch_embed.proj.bias"],
                 stride=PATCH)
    W = x.shape[-1]
    x = x.flatten(2).transpose(1, 2)  # (B*T, N, D)
    x = torch.cat([sd["model.cls_token"].expand(B * T, -1, -1), x], 1) + sd["model.pos_embed"]
    cls, x = x[:B, 0:1], x[:, 1:]
    N = x.shape[1]
    x = x.reshape(B, T, N, D).permute(0, 2, 1, 3).reshape(B * N, T, D)  # '(b t) n m -> (b n) t m'
    time = sd["model.time_embed"]
    if T != time.shape[1]:
        time = F.interpolate(time.transpose(1, 2), size=T, mode="nearest").transpose(1, 2)
    x = torch.cat([cls, (x + time).reshape(B, N * T, D)], 1)
    H = N // W
    for i in range(BLOCKS):
        p = f"model.blocks.{i}."
        xt = x[:, 1:].reshape(B * H * W, T, D)  # 'b (h w t) m -> (b h w) t m'
        res_t = _attn(_ln(xt, sd, p + "temporal_norm1"), sd, p + "temporal_attn").reshape(B, H * W * T, D)
        xt = x[:, 1:] + _lin(res_t, sd, p + "temporal_fc")
        init_cls = x[:, 0:1]
        cls_t = init_cls.repeat(1, T, 1).reshape(B * T, 1, D)
        xs = xt.reshape(B, H * W, T, D).permute(0, 2, 1, 3).reshape(B * T, H * W, D)
        res_s = _attn(_ln(torch.cat([cls_t, xs], 1), sd, p + "norm1"), sd, p + "attn")
        cls_s = res_s[:, 0].reshape(B, T, D).mean(1, keepdim=True)
        res_s = res_s[:, 1:].reshape(B, T, H * W, D).permute(0, 2, 1, 3).reshape(B, H * W * T, D)
        x = torch.cat([init_cls, xt], 1) + torch.cat([cls_s, res_s], 1)
        h = F.gelu(_lin(_ln(x, sd, p + "norm2"), sd, p + "mlp.fc1"))
        x = x + _lin(h, sd, p + "mlp.fc2")
    return _ln(x, sd, "model.norm")


def reference_features(sd, video):
    """(B, T, s, D) like TimesformerEncoder.encode."""
    B, T = video.shape[:2]
    out = reference_forward(sd, video)[:, 1:]
    return out.reshape(B, -1, T, D).transpose(1, 2)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    sd = original_state_dict()
    root = tmp_path_factory.mktemp("timesformer")
    torch.save({"model_state": sd, "epoch": 3}, root / "tiny.pyth")
    out = convert(root / "tiny.pyth", root / "hf", num_heads=HEADS)
    return sd, out


def test_converted_tensors_equal_the_originals_key_by_key(converted):
    from safetensors.torch import load_file

    sd, out = converted
    saved = load_file(str(out / "model.safetensors"))
    mapped = convert_state_dict(sd)
    assert set(saved) == set(mapped) and len(mapped) == len(sd) - 2  # head dropped
    for key, value in mapped.items():
        assert torch.equal(saved[key], value), key
    assert torch.equal(saved["encoder.layer.1.temporal_dense.weight"], sd["model.blocks.1.temporal_fc.weight"])


@pytest.fixture(scope="module")
def encoder(converted):
    return build_component(MODELS, {"name": "timesformer", "source": str(converted[1])}).build().eval()


@pytest.mark.parametrize("t", [FRAMES, 1, 3, 7])
def test_encoder_matches_the_original_forward_for_any_clip_length(converted, encoder, t):
    torch.manual_seed(t)
    video = torch.randn(2, t, 3, IMG, IMG)
    with torch.no_grad():
        ours = encoder.encode(video)
    assert ours.shape == (2, t, 4, D)
    assert torch.allclose(ours, reference_features(converted[0], video), atol=1e-5)
    assert encoder.model.config.num_frames == FRAMES  # restored after the call


def test_padded_frames_do_not_change_features(encoder):
    torch.manual_seed(0)
    video = torch.randn(2, 5, 3, IMG, IMG)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    with torch.no_grad():
        padded = encoder.encode(video, mask)
        alone = encoder.encode(video[1:, :2])
        garbage = video.clone()
        garbage[1, 2:] = 100.0
        again = encoder.encode(garbage, mask)
    assert torch.allclose(padded[1, :2], alone[0], atol=1e-5)
    assert torch.equal(padded[1, 2:], torch.zeros_like(padded[1, 2:]))
    assert torch.equal(padded, again)


def test_image_spec_from_the_saved_processor(encoder):
    assert encoder.spec.image_size == IMG and encoder.spec.num_frames == FRAMES
    assert encoder.spec.mean == (0.45, 0.45, 0.45) and encoder.spec.std == (0.225, 0.225, 0.225)


def test_frames_smaller_than_a_patch_are_refused(encoder):
    # other crops are allowed (Sec. 6 fine-tunes at 320-384 px): tests/fcap/models/test_visual_crops.py
    patch = encoder.model.config.patch_size
    with pytest.raises(ValueError, match=rf"needs square frames of at least its patch size {patch}"):
        encoder.encode(torch.randn(1, 2, 3, patch - 1, patch - 1))


def test_unknown_original_keys_are_refused():
    with pytest.raises(ValueError, match=r"unknown TimeSformer keys .*model.blocks.0.extra.weight"):
        convert_state_dict({"model.blocks.0.extra.weight": torch.zeros(1)})


def test_command_line(converted, tmp_path):
    src = converted[1].parent / "tiny.pyth"
    done = subprocess.run([sys.executable, "-m", "fcap.models.convert_timesformer", str(src),
                           str(tmp_path / "cli"), "--num-heads", str(HEADS)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cli" / "model.safetensors").is_file()
    assert (tmp_path / "cli" / "preprocessor_config.json").is_file()
