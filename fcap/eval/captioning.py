"""Generate one caption per item of an evaluation split, on every rank, gathered on all.

The split's loader must be an evaluation loader (``train=False``): one ordered
pass, rank r reading every world_size-th item (``fcap.data``'s contract).
"""
from __future__ import annotations

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
                      shuffle_videos: bool = False) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(predictions ``{id: caption}``, references ``{id: [caption, ...]}``) over the split.

    ``max_items`` caps the items per rank at ``ceil(max_items / world_size)``.
    """
    was_training = model.training
    model.eval()
    cap = None if max_items is None else -(-max_items // world_size)
    preds: dict[str, str] = {}
    refs: dict[str, list[str]] = {}
    try:
        for batch in loader:
            if cap is not None and len(preds) >= cap:
                break
            inputs = visual_inputs(batch, device=device, dtype=dtype)
            if shuffle_videos:
                inputs = roll_videos(inputs)
            captions = model.generate(**inputs, decoding=decoding)
            for vid, caption, references in zip(batch["ids"], captions, batch["references"]):
                preds[str(vid)] = caption
                refs[str(vid)] = list(references)
    finally:
        model.train(was_training)
    if cap is not None:
        keep = list(preds)[:cap]
        preds = {k: preds[k] for k in keep}
        refs = {k: refs[k] for k in keep}
    merged_p: dict[str, str] = {}
    merged_r: dict[str, list[str]] = {}
    for p, r in _gather((preds, refs), world_size):
        merged_p.update(p)
        merged_r.update(r)
    return merged_p, merged_r
