"""Tiny BLIP captioners saved like a hub checkpoint (for tests, ``--profile tiny`` and benches).

No weights can be downloaded here, so tests build a random
``BlipForConditionalGeneration`` + ``BlipProcessor``, ``save_pretrained`` it
and load it back through the same ``from_pretrained`` path as
``Salesforce/blip-image-captioning-large``. The tokenizer is built from a
``tokenizers`` object: building it from vocab file paths silently yields a
2-token vocabulary (docs: NOTES-ENV).

``tiny_blip_dir()`` is the random one (``source: tiny``); ``tiny_blip_dir(pretrained=True)``
is a tiny BLIP *trained* as an image captioner on LAION-style shapes images
(:mod:`fcap.models.pretrain_tiny.blip`), cached the same way.

Random vision weights: transformers' ``BlipVisionConfig`` defaults to
``initializer_range=1e-10``, which leaves a random vision tower blind (two
images' first-step logits differed by 4e-8); the builders set 0.02 as for the
text side (they then differ by ~2e-3: a random decoder still weighs the image
little, and greedy captions of different images may coincide).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from fcap.cache import cache_dir
from fcap.io import claim_dir, remove_owned

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
WORDS = ("a an the of on in at with and is are to his her man woman person people hand hands "
         "red green blue yellow white black circle square triangle shape moves left right up down "
         "video cooking kitchen table bowl knife cutting pan food car road bike tree grass "
         "sitting standing holding playing close view small large").split()
TINY_VERSION = "tiny-blip-v2"  # bump when the builder changes: the cache key (v2: vision init)
VISION_INIT = 0.02  # std of random vision weights (transformers' default 1e-10 is blind)

# (vision, text) transformer shapes. ``large`` matches BLIP-Large's captioner
# (ViT-L/16 at 384 px, BERT-base decoder) for throughput benches.
SHAPES = {
    "tiny": (dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  image_size=64, patch_size=32),
             dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)),
    "large": (dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                   num_attention_heads=16, image_size=384, patch_size=16),
              dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                   vocab_size=30524)),
}


def build_tokenizer(vocab_size: int | None = None, words: list[str] | None = None):
    """A BERT-style WordPiece tokenizer with BLIP's ``[DEC]`` bos token over ``words``
    (default :data:`WORDS`)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import BertTokenizerFast

    tokens = SPECIALS + list(WORDS if words is None else words)
    if vocab_size is not None:
        tokens += [f"w{i}" for i in range(vocab_size - len(tokens))]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    return BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                             cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                             bos_token="[DEC]")


def build_random_blip(out_dir: str | Path, *, shape: str = "tiny", seed: int = 0) -> Path:
    """Save a randomly initialised BLIP captioner + processor of ``shape`` to ``out_dir``.

    ``out_dir`` is claimed (fcap/io.py): a folder holding files fcap did not write is refused.
    """
    from transformers import BlipForConditionalGeneration

    if shape not in SHAPES:
        raise ValueError(f"unknown random BLIP shape {shape!r}; known: {', '.join(SHAPES)}")
    vision, text = SHAPES[shape]
    tokenizer = build_tokenizer(text.get("vocab_size"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # same weights (and weights hash) on every machine
        model = BlipForConditionalGeneration(blip_config(vision, text, tokenizer)).eval()
    processor = blip_processor(vision["image_size"], tokenizer)
    out_dir = claim_dir(out_dir, kind="random BLIP checkpoint", key="out_dir")
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def blip_config(vision: dict, text: dict, tokenizer):
    """A ``BlipConfig`` with the tokenizer's special ids and seeing random vision weights."""
    from transformers import BlipConfig

    special = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    text = {**text, "vocab_size": len(tokenizer), "bos_token_id": special["[DEC]"],
            "sep_token_id": special["[SEP]"], "eos_token_id": special["[SEP]"],
            "pad_token_id": special["[PAD]"], "max_position_embeddings": 512}
    vision = {"initializer_range": VISION_INIT, **vision}
    return BlipConfig(text_config=text, vision_config=vision, projection_dim=text["hidden_size"])


def blip_processor(image_size: int, tokenizer):
    """BLIP's image processor at ``image_size`` (CLIP mean/std) with ``tokenizer``."""
    from transformers import BlipImageProcessor, BlipProcessor

    return BlipProcessor(tokenizer=tokenizer, image_processor=BlipImageProcessor(
        size={"height": image_size, "width": image_size}))


def tiny_blip_dir(*, pretrained: bool = False) -> Path:
    """The cached tiny BLIP, built on first use (atomically: array jobs may race).

    ``pretrained``: the captioner trained on shapes images
    (:func:`fcap.models.pretrain_tiny.pretrained_dir`, cached under ``models/`` by
    recipe version and options); otherwise the random one, described below.

    Built in a claimed scratch folder and renamed into place (carrying fcap's
    marker); a rename never replaces a non-empty folder, and only the
    marked scratch folder is ever removed.
    """
    if pretrained:
        from fcap.models.pretrain_tiny import pretrained_dir
        from fcap.models.pretrain_tiny.blip import TinyBlip

        return pretrained_dir(TinyBlip())
    target = cache_dir("models", TINY_VERSION)
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = claim_dir(tempfile.mkdtemp(prefix=f".{TINY_VERSION}-", suffix=".tmp", dir=target.parent),
                    kind="tiny BLIP build")
    try:
        build_random_blip(tmp, shape="tiny")
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first; its copy is identical
            if not (target / "config.json").is_file():
                raise
    finally:
        remove_owned(tmp)  # gone after a successful rename
    return target
