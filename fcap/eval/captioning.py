"""Generate one caption per item of an evaluation split, on every rank, gathered on all.

The split's loader must be an evaluation loader (``train=False``): one ordered
pass, rank r reading every world_size-th item (``fcap.data``'s contract).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from fcap.models import DecodingConfig


def visual_inputs(batch: dict, *, device: torch.device, dtype: torch.dtype) -> dict:
    """The batch's visual side as model keyword arguments, in the model's dtype."""
    out = {}
    for key in ("pixel_values", "visual_features"):
        if batch.get(key) is not None:
            out[key] = batch[key].to(device=device, dtype=dtype)
    if batch.get("frame_mask") is not None:
        out["frame_mask"] = batch["frame_mask"].to(device)
    return out


def roll_videos(inputs: dict) -> dict:
    """Pair each item with the next item's video (a control: captions must depend on the video)."""
    return {k: torch.roll(v, shifts=1, dims=0) for k, v in inputs.items()}


def shuffle_frames(inputs: dict, generator: torch.Generator) -> dict:
    """Permute each item's frames (a control: motion must come from the order of frames).

    Each item gets its own random order of its valid frames (``frame_mask``); padded
    frames stay where they are. Images (1 frame) are unchanged.
    """
    video = inputs.get("pixel_values", inputs.get("visual_features"))
    b, t = video.shape[:2]
    mask = inputs.get("frame_mask")
    order = torch.arange(t).repeat(b, 1)
    for i in range(b):
        n = t if mask is None else int(mask[i].sum())
        order[i, :n] = torch.randperm(n, generator=generator)
    out = dict(inputs)
    for key in ("pixel_values", "visual_features"):
        if key in inputs:
            v = inputs[key]
            index = order.to(v.device).view(b, t, *([1] * (v.dim() - 2))).expand_as(v)
            out[key] = torch.gather(v, 1, index)
    return out


@dataclass
class Generated:
    """Captions of a split, gathered from every rank."""

    predictions: dict[str, str] = field(default_factory=dict)  # id -> caption
    references: dict[str, list[str]] = field(default_factory=dict)  # id -> [caption, ...]
    ended_with_eos: dict[str, bool] = field(default_factory=dict)  # id -> False: cut at max_new_tokens

    @property
    def eos_fraction(self) -> float:
        """Fraction of captions that ended with EOS (the rest hit ``max_new_tokens``)."""
        return sum(self.ended_with_eos.values()) / len(self.ended_with_eos) if self.ended_with_eos else 0.0


EXAMPLES_KEPT = 5  # skipped items named per source in a summary


def skipped_items(skips, *, world_size: int = 1) -> dict[str, dict]:
    """Every rank's unreadable items of the split, merged (collective when world_size > 1).

    ``skips``: this rank's ``fcap.data.SkipStats`` (each rank reads its own share
    of the split). Returns ``{source: {attempted, skipped, fraction, reasons:
    {kind: n}, examples: [[path, reason], ...]}}`` over all ranks.
    """
    mine = {name: dict(stats, examples=[list(x) for x in skips.offending(name)])
            for name, stats in skips.summary().items()}
    merged: dict[str, dict] = {}
    for part in _gather(mine, world_size):
        for name, stats in part.items():
            out = merged.setdefault(name, {"attempted": 0, "skipped": 0, "reasons": {},
                                           "examples": []})
            out["attempted"] += stats["attempted"]
            out["skipped"] += stats["skipped"]
            for kind, n in stats["reasons"].items():
                out["reasons"][kind] = out["reasons"].get(kind, 0) + n
            out["examples"] = (out["examples"] + stats["examples"])[:EXAMPLES_KEPT]
    for out in merged.values():
        out["fraction"] = out["skipped"] / out["attempted"] if out["attempted"] else 0.0
    return dict(sorted(merged.items()))


def _gather(obj, world_size: int) -> list:
    if world_size == 1 or not dist.is_initialized():
        return [obj]
    out = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


@torch.no_grad()
def generate_captions(model, loader, *, decoding: DecodingConfig, device: torch.device,
                      dtype: torch.dtype, world_size: int = 1, max_items: int | None = None,
                      shuffle_videos: bool = False, frames_shuffled: bool = False,
                      seed: int = 0) -> Generated:
    """Captions, references and EOS flags over the split (:class:`Generated`).

    ``max_items`` caps the items per rank at ``ceil(max_items / world_size)``.
    ``shuffle_videos``: caption each item from the next item's video;
    ``frames_shuffled``: permute each video's frames (:func:`shuffle_frames`, seeded by ``seed``).
    """
    was_training = model.training
    model.eval()
    cap = None if max_items is None else -(-max_items // world_size)
    mine = Generated()
    generator = torch.Generator().manual_seed(seed)
    eos = model.lm.eos_token_id
    try:
        for batch in loader:
            if cap is not None and len(mine.predictions) >= cap:
                break
            inputs = visual_inputs(batch, device=device, dtype=dtype)
            if shuffle_videos:
                inputs = roll_videos(inputs)
            if frames_shuffled:
                inputs = shuffle_frames(inputs, generator)
            ids = model.generate_ids(**inputs, decoding=decoding)
            captions = model.decode(ids)
            ended = (ids == eos).any(dim=1).tolist()
            for vid, caption, done, references in zip(batch["ids"], captions, ended,
                                                      batch["references"]):
                mine.predictions[str(vid)] = caption
                mine.references[str(vid)] = list(references)
                mine.ended_with_eos[str(vid)] = bool(done)
    finally:
        model.train(was_training)
    keep = list(mine.predictions)[:cap]
    mine = Generated(*({k: d[k] for k in keep} for d in (mine.predictions, mine.references,
                                                          mine.ended_with_eos)))
    merged = Generated()
    for part in _gather(mine, world_size):
        for k in part.predictions:
            merged.predictions[k] = part.predictions[k]
            merged.references[k] = part.references[k]
            merged.ended_with_eos[k] = part.ended_with_eos[k]
    return merged
