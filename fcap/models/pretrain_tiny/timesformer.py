"""Tiny TimeSformer pretrained with supervised heads on shapes clips (the analogue of Kinetics).

The paper's encoder was trained to classify videos, then frozen. Here a tiny
divided space-time TimeSformer learns to classify generated shapes clips --
rendered by the world's own renderer, but from a separate random stream, so no
clip of the world's datasets is seen -- by colour, shape, motion direction and
background. Each attribute has a linear head on the CLS token and one applied to
every patch token, whose loss is averaged over tokens (FrozenCaptioner drops
CLS and max-pools patch tokens: they must carry the attributes themselves).
Position and time embeddings start at std ``embedding_init`` instead of
transformers' 0.02: at 0.02 the tiny model sees neither where nor when, and
learned neither a shape's position nor a fade's direction in 1,000 steps
(bench/README.md, "Tiny pretrained models"). Clips are drawn fresh for every step, sampled to
``num_frames`` frames the way the data loader samples a world clip, and
normalised with the encoder's image statistics, in a DataLoader worker beside
the training step (:func:`batches`). Only the encoder is saved (a
``TimesformerModel`` + its image processor); the heads are kept beside it in
``probe_heads.safetensors`` and their held-out accuracy goes to ``quality.json``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fcap.models.pretrain_tiny import common
from fcap.models.tiny import (IMAGE_MEAN, IMAGE_STD, TinyTimesformer, save_image_processor,
                              timesformer_config)

STREAM = 7919  # the rng stream of the pretraining clips: [seed, STREAM] (the world uses [seed, 0..3])


@dataclass(frozen=True)
class TimesformerRecipe:
    """How the tiny TimeSformer is pretrained (part of its cache key)."""

    steps: int = 1800  # AdamW steps, each on a fresh batch of clips (bench/README.md: shape probe)
    batch_size: int = 32
    lr: float = 2e-3  # peak; linear warmup, cosine to 10%
    warmup: int = 20
    weight_decay: float = 0.05
    embedding_init: float = 1.0  # std of the position and time embeddings at init
    # loss weight of colour, shape, direction, background: the easy attributes (one colour
    # statistic) at weight 1 left direction at chance after 600 steps (bench/README.md);
    # shape at 4 (was 2): circle vs square probe 0.991 on the world's decoded clips (was 0.986)
    loss_weights: tuple[float, float, float, float] = (1.0, 4.0, 3.0, 0.3)
    # steps at the start during which every attribute but direction is weighted by 0.1:
    # motion is learnt first, while the representation is still free (curriculum)
    motion_first_steps: int = 200
    rendered_frames: int = 8  # frames per rendered clip (the world's MSR-VTT clips: 8 at 4 fps)
    heldout_clips: int = 512  # fresh clips for the probe accuracy
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "rendered_frames", "heldout_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if len(self.loss_weights) != 4 or min(self.loss_weights) < 0:
            raise ValueError(f"loss_weights: 4 weights >= 0 (colour, shape, direction, "
                             f"background), got {self.loss_weights}")


@dataclass(frozen=True)
class PretrainedTimesformer:
    """``visual: {source: tiny-pretrained, tiny: DIMS}``: the dims and the recipe."""

    dims: TinyTimesformer = field(default_factory=TinyTimesformer)
    recipe: TimesformerRecipe = field(default_factory=TimesformerRecipe)


def labels() -> dict[str, list[str]]:
    """Each attribute's classes, in a fixed order (the heads' output order)."""
    from fcap.data.shapes import render

    return {"colour": list(render.COLOURS), "shape": list(render.SHAPES),
            "direction": list(render.DIRECTIONS), "background": list(render.BACKGROUNDS)}


def clips(rng: np.random.Generator, n: int, *, dims: TinyTimesformer, rendered_frames: int,
          fps: int = 4) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``n`` normalised clips (n, num_frames, 3, size, size) and their class indices."""
    from fcap.data.media import uniform_indices
    from fcap.data.shapes.render import random_scene, render_clip
    from fcap.data.transform import Preprocess

    classes = labels()
    keep = uniform_indices(rendered_frames, fps, num_frames=dims.num_frames)
    prep = Preprocess(dims.image_size, IMAGE_MEAN, IMAGE_STD)
    pixels, targets = [], {a: [] for a in classes}
    for _ in range(n):
        scene = random_scene(rng)
        frames = render_clip(scene, size=dims.image_size, frames=rendered_frames, indices=keep)
        pixels.append(prep(frames))
        for attr, values in classes.items():
            targets[attr].append(values.index(getattr(scene, attr)))
    return torch.stack(pixels), {a: torch.tensor(v) for a, v in targets.items()}


class Batches(torch.utils.data.IterableDataset):
    """The recipe's training batches, then the held-out clips: one rng stream, in order.

    Drawn in a DataLoader worker (:func:`batches`) so the drawing (~20 ms of a
    core a batch) runs beside the training step: the clips, hence the weights,
    are those drawn in the training process.
    """

    def __init__(self, dims: TinyTimesformer, recipe: TimesformerRecipe) -> None:
        self.dims, self.recipe = dims, recipe

    def __iter__(self):
        recipe = self.recipe
        rng = np.random.default_rng([recipe.seed, STREAM])
        draw = dict(dims=self.dims, rendered_frames=recipe.rendered_frames)
        for _ in range(recipe.steps):
            yield clips(rng, recipe.batch_size, **draw)
        yield clips(rng, recipe.heldout_clips, **draw)  # after training: unseen


def batches(dims: TinyTimesformer, recipe: TimesformerRecipe):
    """:class:`Batches` from one worker process, a few batches ahead of the training step.

    The loader's own generator seeds its worker, so the caller's torch random
    state is left alone. A daemonic process (a multiprocessing pool's worker)
    may not start one: there they are drawn in this process, the same clips."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        return iter(Batches(dims, recipe))
    return iter(torch.utils.data.DataLoader(
        Batches(dims, recipe), batch_size=None, num_workers=1, prefetch_factor=4,
        generator=torch.Generator().manual_seed(recipe.seed)))


class Heads(nn.Module):
    """A linear classifier per attribute on CLS, and one on every patch token."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        classes = labels()
        self.cls = nn.ModuleDict({a: nn.Linear(hidden, len(v)) for a, v in classes.items()})
        self.token = nn.ModuleDict({a: nn.Linear(hidden, len(v)) for a, v in classes.items()})

    def forward(self, hidden: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """hidden: (b, 1 + s*t, d) -> {"cls": {attr: (b, k)}, "token": {attr: (b, s*t, k)}}."""
        cls, tokens = hidden[:, 0], hidden[:, 1:]
        return {"cls": {a: h(cls) for a, h in self.cls.items()},
                "token": {a: h(tokens) for a, h in self.token.items()}}


def _loss(logits: dict, targets: dict[str, torch.Tensor], weights) -> torch.Tensor:
    """Weighted cross-entropy of every head; a token head's averaged over its tokens."""
    loss = 0.0
    for weight, (attr, y) in zip(weights, targets.items()):
        token = logits["token"][attr]
        loss = loss + weight * (nn.functional.cross_entropy(logits["cls"][attr], y) +
                                nn.functional.cross_entropy(token.flatten(0, 1),
                                                            y.repeat_interleave(token.shape[1])))
    return loss


def _accuracy(logits: dict, targets: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Held-out accuracy of the CLS heads and of the token heads (their logits averaged)."""
    out: dict[str, dict[str, float]] = {"cls": {}, "token": {}}
    for attr, y in targets.items():
        for where, pred in (("cls", logits["cls"][attr]), ("token", logits["token"][attr].mean(1))):
            out[where][attr] = round(float((pred.argmax(-1) == y).float().mean()), 4)
    return out


def build(out: Path, spec: PretrainedTimesformer) -> None:
    """Pretrain, save the encoder (transformers format) and write ``quality.json``."""
    from safetensors.torch import save_file
    from transformers import TimesformerModel

    dims, recipe, timer = spec.dims, spec.recipe, common.Timer()
    with common.building(recipe.seed):
        model = TimesformerModel(timesformer_config(dims))
        with torch.no_grad():  # where and when visible from the start (module docstring)
            model.embeddings.position_embeddings.normal_(0.0, recipe.embedding_init)
            model.embeddings.time_embeddings.normal_(0.0, recipe.embedding_init)
        heads = Heads(dims.hidden_size)
        params = [*model.parameters(), *heads.parameters()]
        opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
        model.train()
        drawn = batches(dims, recipe)
        with common.progress(recipe.steps, "tiny TimeSformer: shapes clip classes") as bar:
            for step in range(recipe.steps):
                pixels, targets = next(drawn)
                weights = recipe.loss_weights
                if step < recipe.motion_first_steps:
                    weights = tuple(w if a == "direction" else 0.1 * w
                                    for a, w in zip(targets, weights))
                loss = _loss(heads(model(pixel_values=pixels).last_hidden_state), targets, weights)
                common.train_step(opt, loss, step=step, recipe=recipe, bar=bar)
        model.eval()
        heads.eval()
        pixels, targets = next(drawn)  # the held-out clips, drawn after the training ones
        with torch.no_grad():
            logits = heads(model(pixel_values=pixels).last_hidden_state)
        accuracy = _accuracy(logits, targets)
        model.save_pretrained(out)
        save_image_processor(out, dims.image_size)
        save_file({k: v.contiguous() for k, v in heads.state_dict().items()},
                  str(out / "probe_heads.safetensors"))
    common.write_quality(out, {
        "model": "tiny TimeSformer (supervised colour/shape/direction/background heads)",
        "heldout_accuracy": accuracy["token"], "heldout_accuracy_cls": accuracy["cls"],
        "chance": {a: round(1 / len(v), 4) for a, v in labels().items()},
        "heldout_clips": recipe.heldout_clips, "steps": recipe.steps,
        "train_clips": recipe.steps * recipe.batch_size, **timer.seconds()})
