"""Test plugin: an evaluation-like task whose summary records skipped items, as caption_eval's does."""
from __future__ import annotations

import json
from dataclasses import dataclass

from registry import TASKS


@dataclass(frozen=True)
class SkippingEvalConfig:
    unreadable: int = 0  # items that "could not be read"
    truncated: int = 0
    attempted: int = 100


@TASKS.register("toy_skipping_eval", config=SkippingEvalConfig)
def toy_skipping_eval(cfg, ctx):
    """Write metrics.json (CIDEr) and return a summary with caption_eval's ``skips`` layout."""
    skipped = cfg.unreadable + cfg.truncated
    (ctx.run_dir / "metrics.json").write_text(json.dumps({"CIDEr": 0.5}))
    examples = [[f"/data/msrvtt/videos/video{i}.mp4", "unreadable: decord cannot open it"]
                for i in range(cfg.unreadable)]
    examples += [[f"/data/msrvtt/videos/video{100 + i}.mp4", "truncated: 3 of 795 frames"]
                 for i in range(cfg.truncated)]
    reasons = {k: n for k, n in (("unreadable", cfg.unreadable), ("truncated", cfg.truncated)) if n}
    return {"items": cfg.attempted - skipped,
            "skips": {"msrvtt": {"attempted": cfg.attempted, "skipped": skipped,
                                 "fraction": skipped / cfg.attempted, "reasons": reasons,
                                 "examples": examples[:5]}}}
