"""Tiny BLIP trained as an image captioner on LAION-style shapes images (the pseudolabeller).

The paper's BLIP was trained on still images; it describes what one frame
shows and never how things move. The tiny analogue learns, from still images
drawn by the shapes world's LAION writer (``render_image`` + JPEG, captioned
by ``IMAGE_TEMPLATES``) from a separate random stream, to caption colour,
shape and background -- and nothing about motion, which no still image shows.
Images are upsampled to the captioner's input size the way the pseudolabel
stage resizes decoded frames (``frame_size``), and normalised with BLIP's
image statistics. Quality: attribute accuracy of greedy captions on held-out
images and on held-out centre frames of moving-shape clips (what the
pseudolabel stage captions), read back from the saved folder through the
pseudolabeller's decode path (:func:`fcap.models.blip.caption_images`). The
dims and the tokenizer/config builders are the random tiny BLIP's
(:mod:`fcap.models.tiny_blip`).
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fcap.models.pretrain_tiny import common
from fcap.models.tiny_blip import (WORDS, TinyBlip, blip_config, blip_processor, build_tokenizer,
                                   layers)

STREAM = 7920  # rng stream of the training images: [seed, STREAM] (the world uses [seed, 0..3])


@dataclass(frozen=True)
class BlipRecipe:
    """How the tiny BLIP is trained (part of its cache key)."""

    world_size: int = 32  # side of the rendered images (the world's frame_size)
    steps: int = 800  # AdamW steps, each on a fresh batch of images
    batch_size: int = 32
    lr: float = 1e-3  # peak; linear warmup, cosine to 10%
    warmup: int = 20
    weight_decay: float = 0.01
    heldout_images: int = 256  # for the held-out attribute accuracy (and as many frames)
    # random zoom of each training image by a factor in [1/scale_jitter, scale_jitter] (the
    # border is the plain background), BLIP's usual scale augmentation: without it the
    # captioner named 84% of held-out images' shapes but 45% of video frames', whose
    # shapes are drawn 14% smaller
    scale_jitter: float = 1.25
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "heldout_images", "world_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.scale_jitter < 1.0:
            raise ValueError(f"scale_jitter: must be >= 1, got {self.scale_jitter}")


@dataclass(frozen=True)
class PretrainedBlip:
    dims: TinyBlip = field(default_factory=TinyBlip)
    recipe: BlipRecipe = field(default_factory=BlipRecipe)


def vocabulary() -> list[str]:
    """The random tiny BLIP's words plus every word of the shapes world's captions."""
    from fcap.data.shapes import render

    world = {w for t in (*render.IMAGE_TEMPLATES, *render.VIDEO_TEMPLATES)
             for w in re.sub(r"\{\w+\}", " ", t).split()}
    world |= {*render.COLOURS, *render.BACKGROUNDS, *render.SHAPES, *render.DIRECTIONS}
    return list(WORDS) + sorted(world - set(WORDS))


def _upsample(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def _zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` scaled by ``factor`` about its centre, same size (edge pixels extend the border)."""
    from PIL import Image

    size = image.shape[0]
    new = max(2, int(round(size * factor)))
    scaled = np.asarray(Image.fromarray(image).resize((new, new), Image.BILINEAR))
    if new >= size:
        lo = (new - size) // 2
        return scaled[lo:lo + size, lo:lo + size]
    lo = (size - new) // 2
    return np.pad(scaled, ((lo, size - new - lo), (lo, size - new - lo), (0, 0)), mode="edge")


def _jpeg(image: np.ndarray) -> np.ndarray:
    """Through JPEG and back, as the world's LAION shards store images (quality 92)."""
    from PIL import Image

    from fcap.data.shapes.writers import jpeg_bytes

    return np.asarray(Image.open(io.BytesIO(jpeg_bytes(image))).convert("RGB"))


def images(rng: np.random.Generator, n: int, *, dims: TinyBlip, recipe: BlipRecipe,
           video_frames: bool = False, augment: bool = False) -> tuple[torch.Tensor, list[str], list]:
    """``n`` uint8 images (n, size, size, 3), a caption each, and their scenes.

    ``video_frames``: instead of still images, the centre frame of a moving
    shape's 8-s clip (what the pseudolabel stage captions); captions are still
    image captions. ``augment``: zoomed by a random factor (``scale_jitter``).
    """
    from fcap.data.shapes.render import IMAGE_TEMPLATES, random_scene, render_clip, render_image

    out, captions, scenes = [], [], []
    for _ in range(n):
        scene = random_scene(rng)
        if video_frames:
            frames = 32  # 8 s at the world's 4 fps
            image = render_clip(scene, size=recipe.world_size, frames=frames,
                                indices=[frames // 2])[0]
        else:
            image = _jpeg(render_image(scene, size=recipe.world_size))
        if augment:
            image = _zoom(image, float(np.exp(rng.uniform(-1, 1) * np.log(recipe.scale_jitter))))
        out.append(_upsample(image, dims.image_size))
        captions.append(scene.caption(IMAGE_TEMPLATES[int(rng.integers(len(IMAGE_TEMPLATES)))]))
        scenes.append(scene)
    return torch.from_numpy(np.stack(out)), captions, scenes


def _model(dims: TinyBlip, tokenizer):
    from transformers import BlipForConditionalGeneration

    return BlipForConditionalGeneration(blip_config(*layers(dims), tokenizer))


def _pixels(frames: torch.Tensor, image_processor) -> torch.Tensor:
    """uint8 ``(b, H, W, 3)`` -> ``(b, 3, H, W)`` with BLIP's rescale and mean/std, as the
    pseudolabeller normalises decoded frames."""
    mean = torch.tensor(image_processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(image_processor.image_std).view(1, 3, 1, 1)
    return (frames.permute(0, 3, 1, 2).float() / 255.0 - mean) / std


def _loss(model, pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of ``[DEC] caption [SEP]`` given the image (no label smoothing)."""
    image = model.vision_model(pixel_values=pixels)[0]
    logits = model.text_decoder(input_ids=ids, attention_mask=mask,
                                encoder_hidden_states=image).logits
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(),
                                             ignore_index=-100)


def build(out: Path, spec: PretrainedBlip) -> None:
    """Train, save (model + processor, transformers format) and write ``quality.json``."""
    dims, recipe, timer = spec.dims, spec.recipe, common.Timer()
    with common.building(recipe.seed):
        rng = np.random.default_rng([recipe.seed, STREAM])
        tokenizer = build_tokenizer(words=vocabulary())
        processor = blip_processor(dims.image_size, tokenizer)
        dec = tokenizer.convert_tokens_to_ids("[DEC]")
        model = _model(dims, tokenizer)
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        model.train()
        with common.progress(recipe.steps, "tiny BLIP: captioning shapes images") as bar:
            for step in range(recipe.steps):
                frames, captions, _ = images(rng, recipe.batch_size, dims=dims, recipe=recipe,
                                             augment=True)
                pixels = _pixels(frames, processor.image_processor)
                text = tokenizer(captions, padding=True, return_tensors="pt")
                ids = text["input_ids"].clone()
                ids[:, 0] = dec  # BLIP's decoder starts from [DEC], not [CLS]
                loss = _loss(model, pixels, ids, text["attention_mask"])
                common.train_step(opt, loss, step=step, recipe=recipe, bar=bar)
        model.eval()
        model.save_pretrained(out)
        processor.save_pretrained(out)
        quality = _quality(out, rng, dims=dims, recipe=recipe)
    common.write_quality(out, {"model": "tiny BLIP (image captioner on shapes images)", **quality,
                               "steps": recipe.steps,
                               "train_images": recipe.steps * recipe.batch_size, **timer.seconds()})


def _quality(out: Path, rng: np.random.Generator, *, dims: TinyBlip, recipe: BlipRecipe) -> dict:
    """Attribute accuracy of greedy captions of the saved model (the pseudolabeller's decoding)."""
    from transformers import BlipForConditionalGeneration, BlipProcessor

    from fcap.data.shapes.attributes import parse
    from fcap.models.blip import caption_images

    model = BlipForConditionalGeneration.from_pretrained(out).eval()
    processor = BlipProcessor.from_pretrained(out)
    result: dict = {}
    for name, frames_of_video in (("heldout_images", False), ("heldout_video_frames", True)):
        frames, _, scenes = images(rng, recipe.heldout_images, dims=dims, recipe=recipe,
                                   video_frames=frames_of_video)
        with torch.inference_mode():
            captions = caption_images(model, processor.tokenizer,
                                      _pixels(frames, processor.image_processor),
                                      max_new_tokens=20)
        said = [parse(c) for c in captions]
        acc = {a: round(float(np.mean([s[a] == getattr(sc, a) for s, sc in zip(said, scenes)])), 4)
               for a in ("colour", "shape", "background")}
        acc["mentions_direction"] = round(float(np.mean([s["direction"] is not None
                                                         for s in said])), 4)
        result[name] = acc
    result["heldout_count"] = recipe.heldout_images
    return result
