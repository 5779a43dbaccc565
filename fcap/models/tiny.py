"""Tiny random models for tests and CPU runs (``source: tiny``).

``source: tiny-pretrained`` builds the same dims pretrained instead
(:mod:`fcap.models.pretrain_tiny`).

Built deterministically from dims + seed and saved in the real transformers
format (see :mod:`fcap.models.sources`). The tokenizer is a byte-level BPE with
OPT's special tokens (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3; ``</s>``
doubles as BOS and EOS, as in OPT) trained on a small built-in English corpus.
Built through a ``tokenizers`` object, never from vocab/merges file paths (that
path silently yields a 2-token vocab in transformers 5.x; NOTES-ENV).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]  # OPT's ids 0..3

COLOURS = ["red", "green", "blue", "yellow", "white", "black", "orange", "purple", "pink", "brown"]
SHAPES = ["circle", "square", "triangle", "star", "ball", "box", "cube", "ring"]
DIRECTIONS = ["left", "right", "up", "down", "around", "forward", "backward"]
SUBJECTS = ["a man", "a woman", "a person", "a child", "a dog", "a cat", "people", "the chef"]
ACTIONS = ["is cooking", "is talking", "is playing", "is walking", "is running", "is dancing",
           "is singing", "is cutting vegetables", "is riding a bike", "is driving a car",
           "shows how to make a cake", "is playing the guitar", "is swimming in the water"]
PLACES = ["in a kitchen", "on the street", "in a room", "on a stage", "in the park",
          "at the beach", "on a table", "in front of the camera"]


def corpus() -> list[str]:
    """Caption-like English sentences (colours, shapes, directions, everyday scenes)."""
    lines = [f"a {c} {s} moves {d}" for c, s, d in itertools.product(COLOURS, SHAPES, DIRECTIONS)]
    lines += [f"{s} {a} {p}" for s, a, p in itertools.product(SUBJECTS, ACTIONS, PLACES)]
    lines += ["A video of a man explaining something.", "The woman shows the recipe step by step.",
              "Two people are talking about music, sports and news.", "Then, we add some salt!"]
    return lines


def build_tokenizer(vocab_size: int, lines: list[str] | None = None):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with OPT's special tokens, trained on
    ``lines`` (default: :func:`corpus`)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus() if lines is None else lines, trainer=trainer)
    # OPT's tokenizer prepends </s> as BOS; fcap's prepare_text adds BOS/EOS itself.
    tok.post_processor = processors.TemplateProcessing(single="</s> $A", pair="</s> $A </s> $B",
                                                      special_tokens=[("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="</s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>")


def check_divisible(dims, *pairs: tuple[str, str]) -> None:
    """ValueError naming the field for each ``(a, b)`` of ``pairs`` where ``dims.a % dims.b``."""
    for a, b in pairs:
        if getattr(dims, a) % getattr(dims, b):
            raise ValueError(f"{a}: {getattr(dims, a)} not divisible by {b} {getattr(dims, b)}")


@dataclass(frozen=True)
class TinyDims:
    """What every tiny model's dims share: a transformer's width, depth and heads, and
    the seed its random weights are drawn from. ``divisible`` names the ``(a, b)``
    pairs whose ``a % b`` must be 0 (:func:`check_divisible`)."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    seed: int = 0
    divisible: ClassVar[tuple[tuple[str, str], ...]] = (("hidden_size", "num_heads"),)

    def __post_init__(self) -> None:
        check_divisible(self, *self.divisible)


@dataclass(frozen=True)
class TinyOPT(TinyDims):
    """Dims of ``lm: {source: tiny}`` (ignored for real sources)."""

    num_layers: int = 4
    ffn_dim: int = 256
    vocab_size: int = 512  # BPE vocab trained on the built-in corpus
    max_positions: int = 128  # longest text (tokens) the tiny LM can read

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.vocab_size < 300:
            raise ValueError(f"vocab_size: must be >= 300 (256 bytes + specials), got {self.vocab_size}")


def build_tiny_opt(out: Path, dims: TinyOPT) -> None:
    from transformers import OPTForCausalLM

    tokenizer = build_tokenizer(dims.vocab_size)
    config = opt_config(dims, len(tokenizer))
    with torch.random.fork_rng(devices=[]):  # leaves the caller's random state as it was
        torch.manual_seed(dims.seed)
        model = OPTForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def opt_config(dims: TinyOPT, vocab_size: int):
    """The ``OPTConfig`` of a tiny OPT with ``dims`` (OPT's token ids: pad 1, bos = eos 2)."""
    from transformers import OPTConfig

    return OPTConfig(vocab_size=vocab_size, hidden_size=dims.hidden_size,
                     num_hidden_layers=dims.num_layers, num_attention_heads=dims.num_heads,
                     ffn_dim=dims.ffn_dim, max_position_embeddings=dims.max_positions,
                     word_embed_proj_dim=dims.hidden_size, do_layer_norm_before=True,
                     pad_token_id=1, bos_token_id=2, eos_token_id=2, dropout=0.0,
                     attention_dropout=0.0)


@dataclass(frozen=True)
class TinyTimesformer(TinyDims):
    """Dims of ``visual: {source: tiny}`` (ignored for real sources)."""

    image_size: int = 32
    patch_size: int = 8
    num_frames: int = 4
    intermediate_size: int = 128
    divisible: ClassVar[tuple[tuple[str, str], ...]] = (("image_size", "patch_size"),
                                                        ("hidden_size", "num_heads"))


IMAGE_MEAN = (0.45, 0.45, 0.45)  # TimeSformer's (Kinetics) normalisation
IMAGE_STD = (0.225, 0.225, 0.225)


def save_image_processor(out: Path, image_size: int, mean=IMAGE_MEAN, std=IMAGE_STD) -> None:
    """The VideoMAE image processor HF TimeSformer checkpoints ship with."""
    from transformers.models.videomae import VideoMAEImageProcessorPil

    VideoMAEImageProcessorPil(size={"shortest_edge": image_size},
                              crop_size={"height": image_size, "width": image_size},
                              image_mean=list(mean), image_std=list(std)).save_pretrained(out)


def timesformer_config(dims: TinyTimesformer):
    """The ``TimesformerConfig`` of a tiny divided space-time TimeSformer with ``dims``."""
    from transformers import TimesformerConfig

    return TimesformerConfig(image_size=dims.image_size, patch_size=dims.patch_size,
                             num_frames=dims.num_frames, hidden_size=dims.hidden_size,
                             num_hidden_layers=dims.num_layers, num_attention_heads=dims.num_heads,
                             intermediate_size=dims.intermediate_size,
                             attention_type="divided_space_time")


def build_tiny_timesformer(out: Path, dims: TinyTimesformer) -> None:
    from transformers import TimesformerModel

    with torch.random.fork_rng(devices=[]):  # leaves the caller's random state as it was
        torch.manual_seed(dims.seed)
        model = TimesformerModel(timesformer_config(dims))
        with torch.no_grad():  # HF inits time embeddings to zero; random ones make frame order visible
            model.embeddings.time_embeddings.normal_(0.0, 0.02)
    model.save_pretrained(out)
    save_image_processor(out, dims.image_size)
