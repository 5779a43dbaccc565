"""Tasks ``pseudolabel`` (label shards) and ``pseudolabel_merge`` (validate + index).

``pseudolabel`` writes ``<run_dir>/shards/``. It runs shard ``shard_index``
when given (a SLURM array element: ``stages.<label>.shard_index=$SLURM_ARRAY_TASK_ID``,
or the launcher's ``ctx.extra["array_index"]``), else every shard in turn,
skipping finished ones. ``pseudolabel_merge`` reads the shards of the stage it
depends on and writes ``pseudolabels.jsonl`` + ``index.json`` (+ report) into
its own run dir: point the ``howto100m`` source's ``pseudolabels:`` there.
"""
from __future__ import annotations

import json
from pathlib import Path

from fcap.context import StageContext
from fcap.io import claim_dir, is_owned
from fcap.pseudolabel.collection import list_videos, shard_name, shard_videos
from fcap.pseudolabel.config import MergeConfig, PseudolabelConfig
from fcap.pseudolabel.failures import check_budget
from fcap.pseudolabel.files import ShardPaths
from fcap.pseudolabel.retry import changed_failures
from fcap.pseudolabel.shard import retry_hint, run_shard
from registry import TASKS


def _summarise(manifests: list[dict]) -> dict:
    stats = [m["stats"] for m in manifests if not m.get("skipped")]
    clips = sum(s["clips_this_run"] for s in stats)
    wall = sum(s["wall_s"] for s in stats)
    words = [(m["stats"]["caption_words_mean"], m["counts"]["clips"]) for m in manifests
             if m["stats"]["caption_words_mean"] is not None]
    total = sum(n for _, n in words)
    return {
        "shards": [m["shard"] for m in manifests],
        "skipped": [m["shard"] for m in manifests if m.get("skipped")],
        "videos": sum(m["counts"]["videos"] for m in manifests),
        "clips": sum(m["counts"]["clips"] for m in manifests),
        "failures": sum(m["counts"]["failures"] for m in manifests),
        "clips_labelled_now": clips,
        "clips_per_s": round(clips / wall, 3) if wall > 0 else None,
        "decode_s": round(sum(s["decode_s"] for s in stats), 3),
        "caption_s": round(sum(s["caption_s"] for s in stats), 3),
        "caption_words_mean": round(sum(w * n for w, n in words) / total, 3) if total else None,
    }


@TASKS.register("pseudolabel", config=PseudolabelConfig, outputs={"shards": "shards"})
def pseudolabel(cfg: PseudolabelConfig, ctx: StageContext) -> dict:
    """Caption the centre frame of every 8-second clip of a video collection (Sec. 3.1)."""
    index = cfg.shard_index if cfg.shard_index is not None else ctx.extra.get("array_index")
    array = getattr(ctx.resources, "array", None)
    if array is not None and array != cfg.num_shards:
        raise ValueError(f"pseudolabel: stage {ctx.stage!r}: resources.array {array} differs from "
                         f"num_shards {cfg.num_shards}; one array element labels one shard")
    shards = [int(index)] if index is not None else list(range(cfg.num_shards))
    captioner = videos = None
    manifests = []
    for i in shards:
        finished = _finished(ctx, cfg, i)
        if captioner is None and (finished is None or finished["failures"]):
            videos = videos if videos is not None else list_videos(cfg)  # once; an empty
            # collection stops before BLIP loads
            if finished is None or changed_failures(finished, shard_videos(videos, cfg.num_shards, i)):
                captioner = cfg.captioner.build()  # once for all shards of this process
        # The run dir is <output_root>/<experiment>/<variant>/<stage>: name output_root if refused.
        manifests.append(run_shard(cfg, i, ctx.run_dir, seed=ctx.seed, captioner=captioner,
                                   logger=ctx.logger, videos=videos, judge=False, key="output_root"))
    whole = len(shards) == cfg.num_shards
    where = (f"pseudolabel stage {ctx.stage!r}" if whole
             else f"pseudolabel stage {ctx.stage!r}, {manifests[0]['shard']}")
    check_budget(manifests, cfg.max_failure_fraction, whole=whole, where=where,
                 hint=retry_hint([ShardPaths(ctx.run_dir / "shards", m["shard"]) for m in manifests]))
    return _summarise(manifests)


def _finished(ctx: StageContext, cfg: PseudolabelConfig, i: int) -> dict | None:
    """Shard ``i``'s manifest when it is finished; None too when ``shards/`` is not fcap's
    (run_shard refuses it, and checks the manifest's settings)."""
    path = ctx.run_dir / "shards" / f"{shard_name(i, cfg.num_shards)}.manifest.json"
    return json.loads(path.read_text()) if path.is_file() and is_owned(path.parent) else None


@TASKS.register("pseudolabel_merge", config=MergeConfig,
                outputs={"pseudolabels": "pseudolabels.jsonl", "index": "index.json",
                         "report": "report"})
def pseudolabel_merge(cfg: MergeConfig, ctx: StageContext) -> dict:
    """Check that every clip is labelled exactly once and write the index ``howto100m`` reads."""
    if cfg.shards_from is not None:
        if cfg.shards_from not in ctx.deps:
            raise ValueError(f"pseudolabel_merge: shards_from {cfg.shards_from!r} is not a dependency "
                             f"of stage {ctx.stage!r}; dependencies: {', '.join(ctx.deps) or '(none)'}")
        source = ctx.deps[cfg.shards_from]
    elif len(ctx.deps) == 1:
        source = next(iter(ctx.deps.values()))
    else:
        raise ValueError(f"pseudolabel_merge: stage {ctx.stage!r} needs exactly one dependency or "
                         f"'shards_from'; dependencies: {', '.join(ctx.deps) or '(none)'}")
    from fcap.pseudolabel.merge import merge  # lazily: keeps `python -m fcap.pseudolabel.merge` clean

    if cfg.report_clips:  # claimed before anything is written: a refusal leaves nothing half done
        claim_dir(ctx.run_dir / "report", kind="pseudolabel report")
    # The run dir is the runner's (config.yaml, log.txt): merge writes beside those files and
    # replaces only outputs an earlier merge wrote (merge.py); report/ is claimed.
    index = merge(source, ctx.run_dir, claim_dest=False, max_failure_fraction=cfg.max_failure_fraction)
    summary = {**index["counts"], **index["stats"], "pseudolabels": str(ctx.run_dir / "pseudolabels.jsonl")}
    if cfg.report_clips:
        from fcap.pseudolabel.report import write_report

        asr = cfg.asr or _layout_asr(index["collection"]["videos"])
        summary["report"] = write_report(ctx.run_dir, n=cfg.report_clips, asr=asr, seed=ctx.seed)
    if index.get("truth"):
        summary["truth_accuracy"] = index["truth"]["accuracy"]
    return summary


def _layout_asr(videos: str) -> str | None:
    """The collection's own ASR (HowTo100M layout: ``caption.json`` beside the videos), if any."""
    path = Path(videos).expanduser() / "caption.json"
    return str(path) if path.is_file() else None
