"""Convert an original TimeSformer checkpoint (facebookresearch/TimeSformer) to a
transformers ``TimesformerModel`` directory.

The paper's encoder, ``TimeSformer_divST_96x32_224_HowTo100M.pyth``, exists only
in the original layout: ``{"model_state": {"model.patch_embed.proj.weight", ...}}``.
Usage::

    python -m fcap.models.convert_timesformer SRC.pyth OUT_DIR [--num-heads 12]

Writes ``config.json``, ``model.safetensors`` and the VideoMAE image processor
(TimeSformer's normalisation, mean 0.45 / std 0.225) into OUT_DIR. The
classification ``model.head`` is dropped: fcap uses the last hidden states.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from fcap.models.tiny import IMAGE_MEAN, IMAGE_STD, save_image_processor

_TOP = {
    "model.patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "model.patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "model.cls_token": "embeddings.cls_token",
    "model.pos_embed": "embeddings.position_embeddings",
    "model.time_embed": "embeddings.time_embeddings",
    "model.norm.weight": "layernorm.weight",
    "model.norm.bias": "layernorm.bias",
}
_BLOCK = {
    "norm1": "layernorm_before",
    "attn.qkv": "attention.attention.qkv",
    "attn.proj": "attention.output.dense",
    "temporal_norm1": "temporal_layernorm",
    "temporal_attn.qkv": "temporal_attention.attention.qkv",
    "temporal_attn.proj": "temporal_attention.output.dense",
    "temporal_fc": "temporal_dense",
    "norm2": "layernorm_after",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
_BLOCK_RE = re.compile(r"^model\.blocks\.(\d+)\.(.+)\.(weight|bias)$")
_DROPPED = re.compile(r"^model\.head\.")


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original key layout -> ``TimesformerModel`` keys; unknown keys raise ValueError."""
    out, unknown = {}, []
    for key, value in state.items():
        if key in _TOP:
            out[_TOP[key]] = value
        elif (m := _BLOCK_RE.match(key)) and m.group(2) in _BLOCK:
            out[f"encoder.layer.{m.group(1)}.{_BLOCK[m.group(2)]}.{m.group(3)}"] = value
        elif not _DROPPED.match(key):
            unknown.append(key)
    if unknown:
        raise ValueError(f"unknown TimeSformer keys (not in the facebookresearch layout): {unknown[:8]}")
    return out


def infer_config(state: dict[str, torch.Tensor], *, num_heads: int):
    """A ``TimesformerConfig`` from tensor shapes (heads cannot be inferred: pass them)."""
    from transformers import TimesformerConfig

    proj = state["model.patch_embed.proj.weight"]  # (hidden, 3, patch, patch)
    hidden, channels, patch = proj.shape[0], proj.shape[1], proj.shape[2]
    side = int(round((state["model.pos_embed"].shape[1] - 1) ** 0.5))
    blocks = {int(m.group(1)) for k in state if (m := _BLOCK_RE.match(k))}
    return TimesformerConfig(
        image_size=side * patch, patch_size=patch, num_channels=channels,
        num_frames=state["model.time_embed"].shape[1], hidden_size=hidden,
        num_hidden_layers=len(blocks), num_attention_heads=num_heads,
        intermediate_size=state["model.blocks.0.mlp.fc1.weight"].shape[0],
        qkv_bias="model.blocks.0.attn.qkv.bias" in state, layer_norm_eps=1e-6,
        attention_type="divided_space_time")


def convert(src: str | Path, out: str | Path, *, num_heads: int = 12,
            image_mean=IMAGE_MEAN, image_std=IMAGE_STD) -> Path:
    """Convert ``src`` (.pyth) into a loadable ``TimesformerModel`` directory ``out``."""
    from transformers import TimesformerModel

    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    state = ckpt.get("model_state", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or "model.patch_embed.proj.weight" not in state:
        raise ValueError(f"{src}: expected an original TimeSformer checkpoint with 'model_state' "
                         "holding 'model.patch_embed.proj.weight', ...")
    config = infer_config(state, num_heads=num_heads)
    model = TimesformerModel(config)
    missing, unexpected = model.load_state_dict(convert_state_dict(state), strict=False)
    if missing or unexpected:
        raise ValueError(f"{src}: conversion left missing keys {missing[:8]}, unexpected {unexpected[:8]}")
    out = Path(out)
    model.save_pretrained(out)
    save_image_processor(out, config.image_size, image_mean, image_std)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fcap.models.convert_timesformer",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("src", help="original TimeSformer checkpoint (.pyth)")
    parser.add_argument("out", help="output directory (transformers TimesformerModel)")
    parser.add_argument("--num-heads", type=int, default=12, help="attention heads (ViT-B: 12)")
    args = parser.parse_args(argv)
    print(convert(args.src, args.out, num_heads=args.num_heads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
