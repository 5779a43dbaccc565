"""Tiny BLIP captioners saved like a hub checkpoint (``captioner: {name: blip, source: tiny}``).

No weights can be downloaded here, so tests build a random
``BlipForConditionalGeneration`` + ``BlipProcessor`` of :class:`TinyBlip`'s
dims, ``save_pretrained`` it into the fcap cache (:mod:`fcap.models.tiny_cache`)
and load it back through the same ``from_pretrained`` path as
``Salesforce/blip-image-captioning-large``. ``source: tiny-pretrained`` is the
same dims trained as an image captioner on shapes images
(:mod:`fcap.models.pretrain_tiny.blip`). The tokenizer is built from a
``tokenizers`` object: building it from vocab file paths silently yields a
2-token vocabulary (docs: NOTES-ENV).

Random vision weights: transformers' ``BlipVisionConfig`` defaults to
``initializer_range=1e-10``, which leaves a random vision tower blind (two
images' first-step logits differed by 4e-8); the builders set 0.02 as for the
text side (they then differ by ~2e-3: a random decoder still weighs the image
little, and greedy captions of different images may coincide).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from fcap.io import claim_dir
from fcap.models.tiny import TinyDims

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
WORDS = ("a an the of on in at with and is are to his her man woman person people hand hands "
         "red green blue yellow white black circle square triangle shape moves left right up down "
         "video cooking kitchen table bowl knife cutting pan food car road bike tree grass "
         "sitting standing holding playing close view small large").split()
VISION_INIT = 0.02  # std of random vision weights (transformers' default 1e-10 is blind)


@dataclass(frozen=True)
class TinyBlip(TinyDims):
    """Dims of the tiny BLIP (``source: tiny`` random, ``tiny-pretrained`` trained):
    ``hidden_size``/``num_layers`` are the text decoder's, ``vision_*`` the ViT's;
    ``num_heads`` serves both."""

    image_size: int = 64  # input side; the tiny profile decodes frames at frame_size 64
    patch_size: int = 16
    vision_hidden: int = 64
    vision_layers: int = 2
    divisible: ClassVar[tuple[tuple[str, str], ...]] = (
        ("image_size", "patch_size"), ("vision_hidden", "num_heads"), ("hidden_size", "num_heads"))


def layers(dims: TinyBlip) -> tuple[dict, dict]:
    """(vision, text) transformer options of a BLIP with ``dims``."""
    vision = dict(hidden_size=dims.vision_hidden, intermediate_size=2 * dims.vision_hidden,
                  num_hidden_layers=dims.vision_layers, num_attention_heads=dims.num_heads,
                  image_size=dims.image_size, patch_size=dims.patch_size)
    text = dict(hidden_size=dims.hidden_size, intermediate_size=2 * dims.hidden_size,
                num_hidden_layers=dims.num_layers, num_attention_heads=dims.num_heads)
    return vision, text


# BLIP-Large's captioner (ViT-L/16 at 384 px, BERT-base decoder), random: throughput benches.
LARGE = (dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
              num_attention_heads=16, image_size=384, patch_size=16),
         dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              vocab_size=30524))


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


def _save_random(out: Path, vision: dict, text: dict, seed: int) -> None:
    from transformers import BlipForConditionalGeneration

    tokenizer = build_tokenizer(text.get("vocab_size"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # same weights (and weights hash) on every machine
        model = BlipForConditionalGeneration(blip_config(vision, text, tokenizer)).eval()
    model.save_pretrained(out)
    blip_processor(vision["image_size"], tokenizer).save_pretrained(out)


def build_tiny_blip(out: Path, dims: TinyBlip) -> None:
    """The random tiny BLIP with ``dims`` into ``out`` (a cache builder: ``source: tiny``)."""
    _save_random(out, *layers(dims), dims.seed)


def build_random_blip(out_dir: str | Path, *, shape: str = "tiny", seed: int = 0) -> Path:
    """Save a randomly initialised BLIP captioner + processor of ``shape`` to ``out_dir``.

    ``shape``: ``tiny`` (:class:`TinyBlip`'s dims) or ``large`` (BLIP-Large's,
    :data:`LARGE`). ``out_dir`` is claimed (fcap/io.py): a folder holding
    files fcap did not write is refused.
    """
    shapes = {"tiny": layers(TinyBlip()), "large": LARGE}
    if shape not in shapes:
        raise ValueError(f"unknown random BLIP shape {shape!r}; known: {', '.join(shapes)}")
    out_dir = claim_dir(out_dir, kind="random BLIP checkpoint", key="out_dir")
    _save_random(out_dir, *shapes[shape], seed)
    return out_dir
