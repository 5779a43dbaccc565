"""Label one shard: ``run_shard(cfg, shard_index, out_dir)`` (one SLURM array element).

Videos are decoded in DataLoader workers (frames.py) while the main process
captions; a caption batch spans clips and videos. Every ``flush_every`` clips
the progress log is made durable, so a killed shard resumes with no duplicate
and no gap; captions are seeded per clip, so resumed output equals an
uninterrupted run's. A finished shard (its manifest exists) is skipped, unless
videos it failed on have changed since (retry.py: it labels those again).

``<out_dir>/shards/`` is claimed (fcap/io.py) before anything is written, so a
folder holding files fcap did not write is refused, never overwritten. Every
video ends labelled or listed as a failure with its cause; too many failures
stop the run (failures.py) after the manifest is written, so no work is lost.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader

import fcap
from fcap.config import to_dict
from fcap.data.skips import count_kinds, format_kinds
from fcap.io import OwnershipError, claim_dir, is_owned, write_json_atomic, write_text_atomic
from fcap.pseudolabel.clips import Clip, derive_seed
from fcap.pseudolabel.collection import list_videos, shard_name, shard_videos, videos_root
from fcap.pseudolabel.config import PseudolabelConfig
from fcap.pseudolabel.failures import check_budget
from fcap.pseudolabel.files import ProgressLog, ShardPaths, dumps_jsonl, read_progress
from fcap.pseudolabel.frames import VideoFrames
from fcap.pseudolabel.retry import changed_failures, file_stamp, reopen

log = logging.getLogger("fcap.pseudolabel")


def settings_of(cfg: PseudolabelConfig, seed: int) -> dict:
    """Everything that changes the labels; a shard is only resumed or skipped under the same."""
    return {"videos": str(videos_root(cfg).resolve()), "ids": cfg.ids, "extensions": list(cfg.extensions),
            "clips": to_dict(cfg.clips), "frame_size": cfg.frame_size,
            "captioner": to_dict(cfg.captioner), "sampling": to_dict(cfg.sampling),
            "seed": seed, "num_shards": cfg.num_shards}


def check_settings(found: dict | None, expected: dict, where: Path) -> None:
    if found is None or found == expected:
        return
    keys = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
    raise ValueError(f"{where}: written with different settings (differing keys: {', '.join(keys)}); "
                     "use another output folder or delete the shard's files")


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding parallelism comes from workers, not BLAS threads


class _Labeller:
    """The caption side of one shard: batches frames, assembles clip records, flushes."""

    def __init__(self, cfg, captioner, seed, out: ProgressLog, on_flush) -> None:
        self.cfg, self.captioner, self.seed, self.out, self.on_flush = cfg, captioner, seed, out, on_flush
        self.queue: list[tuple[str, Clip, int, torch.Tensor]] = []  # (video, clip, frame pos, frame)
        self.partial: dict[tuple[str, int], list] = {}
        self.remaining: dict[str, int] = {}
        self.num_clips: dict[str, int] = {}
        self.buffer: list[dict] = []
        self.buffered_clips = self.flushed_clips = self.labelled = 0
        self.caption_s = 0.0

    def add_video(self, item: dict) -> None:
        vid = item["video_id"]
        error = item["error"]
        if error is None and item["num_clips"] == 0:  # labelled or a failure, never neither
            error = "no clips: the clip planner gave this video no clip"
        if error is not None:
            self.buffer.append({"video_done": vid, "num_clips": 0, "error": error,
                                "path": item.get("path"), "stamp": file_stamp(item.get("path"))})
            return
        if not item["clips"]:  # every clip labelled before a resume; only the end was lost
            self.buffer.append({"video_done": vid, "num_clips": item["num_clips"], "error": None})
            return
        self.num_clips[vid] = item["num_clips"]
        self.remaining[vid] = len(item["clips"])
        row = 0
        for clip in item["clips"]:
            for j in range(len(clip.frame_indices)):
                self.queue.append((vid, clip, j, item["frames"][row]))
                row += 1
        while len(self.queue) >= self.cfg.batch_size:
            self.caption_batch(self.queue[:self.cfg.batch_size])
            del self.queue[:self.cfg.batch_size]

    def caption_batch(self, batch) -> None:
        n = self.cfg.sampling.captions_per_frame
        seeds = [[derive_seed(self.seed, vid, clip.index, j * n + s) for s in range(n)]
                 for vid, clip, j, _ in batch]
        t0 = time.perf_counter()
        captions = self.captioner.caption(torch.stack([f for *_, f in batch]), seeds=seeds,
                                          sampling=self.cfg.sampling)
        self.caption_s += time.perf_counter() - t0
        for (vid, clip, j, _), caps in zip(batch, captions):
            got = self.partial.setdefault((vid, clip.index), [None] * len(clip.frame_indices))
            got[j] = caps
            if all(c is not None for c in got):
                del self.partial[(vid, clip.index)]
                self.emit(vid, clip, got)

    def emit(self, vid: str, clip: Clip, captions: list[list[str]]) -> None:
        k = clip.key_frame
        record = {"video_id": vid, "clip_index": clip.index, "start": clip.start, "end": clip.end,
                  "frame_time": clip.frame_times[k], "caption": captions[k][0]}
        if sum(len(c) for c in captions) > 1:
            record["captions"] = [{"frame_time": t, "caption": c}
                                  for t, caps in zip(clip.frame_times, captions) for c in caps]
        self.buffer.append(record)
        self.buffered_clips += 1
        self.labelled += 1
        self.remaining[vid] -= 1
        if self.remaining[vid] == 0:
            self.buffer.append({"video_done": vid, "num_clips": self.num_clips[vid], "error": None})
        if self.buffered_clips >= self.cfg.flush_every:
            self.flush()

    def finish(self) -> None:
        if self.queue:
            self.caption_batch(self.queue)
            self.queue = []
        self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        self.out.write(self.buffer)
        self.out.flush()
        self.flushed_clips += self.buffered_clips
        self.buffer, self.buffered_clips = [], 0
        if self.on_flush is not None:
            self.on_flush(self.flushed_clips)


def run_shard(cfg: PseudolabelConfig, shard_index: int, out_dir: str | Path, *, seed: int = 0,
              captioner: Any = None, on_flush: Callable[[int], None] | None = None,
              logger: logging.Logger | None = None, videos: dict[str, Path | None] | None = None,
              judge: bool = True, key: str = "out_dir") -> dict:
    """Label shard ``shard_index`` of ``cfg.num_shards`` into ``<out_dir>/shards/``; return its manifest.

    ``seed`` is used when ``cfg.seed`` is None (the experiment seed).
    ``captioner`` reuses a loaded captioner (else built from ``cfg.captioner``).
    ``on_flush(clips_flushed_so_far_this_run)`` runs after each durable flush
    (tests raise from it to simulate a kill). ``videos``: the collection
    (``list_videos(cfg)``) when the caller listed it already. ``judge``:
    apply the failure budget to this shard (failures.py; the task judges
    the shards it ran together instead). ``key`` names the option that chose
    ``out_dir`` in an OwnershipError. Returns the manifest, with
    ``"skipped": True`` when the shard was already finished.
    """
    logger = logger or log
    seed = cfg.seed if cfg.seed is not None else seed
    shards_dir = claim_dir(Path(out_dir) / "shards", kind="pseudolabel shards", key=key)
    paths = ShardPaths(shards_dir, shard_name(shard_index, cfg.num_shards))
    settings = settings_of(cfg, seed)
    if paths.manifest.is_file() and paths.records.is_file():
        manifest = json.loads(paths.manifest.read_text())
        check_settings(manifest.get("settings"), settings, paths.manifest)
        if manifest["failures"]:
            videos = shard_videos(videos if videos is not None else list_videos(cfg), cfg.num_shards,
                                  shard_index)
            retry = changed_failures(manifest, videos)
            if retry:
                reopen(paths, manifest, retry, logger)
                return _label(cfg, paths, settings, seed, videos, captioner, on_flush, logger, judge)
        logger.info("pseudolabel: %s already finished, skipped", paths.name)
        if manifest.get("max_failure_fraction") != cfg.max_failure_fraction:
            # The budget is no label setting: record the latest, which merge applies by default.
            manifest["max_failure_fraction"] = cfg.max_failure_fraction
            write_json_atomic(paths.manifest, manifest, fsync=True)
        if judge:
            judge_shard(manifest, cfg.max_failure_fraction, paths)
        return {**manifest, "skipped": True}

    videos = shard_videos(videos if videos is not None else list_videos(cfg), cfg.num_shards,
                          shard_index)
    return _label(cfg, paths, settings, seed, videos, captioner, on_flush, logger, judge)


def _label(cfg: PseudolabelConfig, paths: ShardPaths, settings: dict, seed: int,
           videos: dict[str, Path | None], captioner: Any, on_flush, logger, judge: bool) -> dict:
    """Label the shard's videos its progress log lacks, then write its JSONL and manifest."""
    progress = read_progress(paths.progress)
    check_settings(progress.settings, settings, paths.progress)
    resumed = len(progress.records)
    if captioner is None:
        captioner = cfg.captioner.build()
    out = ProgressLog(paths.progress)
    if progress.settings is None:
        out.write([{"settings": settings}])
    todo = [(vid, path) for vid, path in videos.items() if vid not in progress.videos_done]
    logger.info("pseudolabel: %s: %d videos (%d to do), %d clips already labelled",
                paths.name, len(videos), len(todo), resumed)
    dataset = VideoFrames(todo, clips=cfg.clips, frame_size=cfg.frame_size, seed=seed,
                          done=progress.done_clips())
    loader = DataLoader(dataset, batch_size=None, num_workers=cfg.num_workers,
                        prefetch_factor=cfg.prefetch_videos if cfg.num_workers else None,
                        worker_init_fn=_worker_init if cfg.num_workers else None)
    labeller = _Labeller(cfg, captioner, seed, out, on_flush)
    decode_s = wait_s = 0.0
    t_start = time.perf_counter()
    try:
        t0 = time.perf_counter()
        for item in loader:
            wait_s += time.perf_counter() - t0
            decode_s += item["decode_s"]
            labeller.add_video(item)
            t0 = time.perf_counter()
        labeller.finish()
    finally:
        out.close()
    wall_s = time.perf_counter() - t_start
    stats = {"clips_this_run": labeller.labelled, "clips_resumed": resumed, "wall_s": round(wall_s, 3),
             "decode_s": round(decode_s, 3), "caption_s": round(labeller.caption_s, 3),
             "wait_s": round(wait_s, 3),
             "clips_per_s": round(labeller.labelled / wall_s, 3) if wall_s > 0 else None}
    manifest = _finish(cfg, paths, videos, settings, seed, captioner, stats, logger)
    if judge:
        judge_shard(manifest, cfg.max_failure_fraction, paths)
    return manifest


def judge_shard(manifest: dict, max_fraction: float, paths: ShardPaths) -> None:
    """The failure budget on one shard: the whole collection when it is the only shard."""
    check_budget([manifest], max_fraction, whole=manifest["num_shards"] == 1,
                 where=f"pseudolabel {paths.name}", hint=retry_hint([paths]))


def retry_hint(paths: list[ShardPaths]) -> str:
    """How to go on after a failure-budget error on finished shards."""
    names = ", ".join(p.name for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
    return (f"The results are kept in {paths[0].shards_dir} ({names}): fix or replace those videos "
            "and run again (a finished shard labels again the failed videos whose files changed and "
            "keeps its other labels), or raise max_failure_fraction to accept the failures.")


def _finish(cfg, paths: ShardPaths, videos: dict, settings: dict, seed: int, captioner,
            stats: dict, logger) -> dict:
    """Check the progress log covers every clip once, then write JSONL and manifest atomically."""
    progress = read_progress(paths.progress)
    missing = sorted(set(videos) - set(progress.videos_done))
    if missing:
        raise RuntimeError(f"{paths.progress}: videos never finished: {', '.join(missing[:10])}")
    readable = {v: d["num_clips"] for v, d in progress.videos_done.items() if d["error"] is None}
    failures = [{"video_id": v, "path": d.get("path"), "error": d["error"], "stamp": d.get("stamp")}
                for v, d in sorted(progress.videos_done.items()) if d["error"] is not None]
    done = progress.done_clips()
    for vid, n in readable.items():
        if done.get(vid, set()) != set(range(n)):
            raise RuntimeError(f"{paths.progress}: video {vid} has clips {sorted(done.get(vid, []))}, "
                               f"expected 0..{n - 1}")
    records = [progress.records[k] for k in sorted(progress.records)]
    write_text_atomic(paths.records, dumps_jsonl(records), fsync=True)
    words = [len(r["caption"].split()) for r in records]
    manifest = {
        "shard": paths.name, "shard_index": int(paths.name.split("-")[1]),
        "num_shards": cfg.num_shards, "fcap_version": fcap.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "captioner": {"id": captioner.id, "weights_hash": captioner.weights_hash,
                      "dtype": str(captioner.dtype).replace("torch.", ""), "device": str(captioner.device)},
        "sampling": settings["sampling"], "clips": settings["clips"], "frame_size": cfg.frame_size,
        "seed": seed, "videos_root": settings["videos"], "ids": cfg.ids,
        "counts": {"videos": len(videos), "videos_labelled": len(readable), "clips": len(records),
                   "failures": len(failures)},
        "stats": {**stats, "caption_words_mean": round(sum(words) / len(words), 3) if words else None},
        "videos": dict(sorted(readable.items())),
        "failures": failures,
        "max_failure_fraction": cfg.max_failure_fraction,  # not a setting: it changes no label
        "settings": settings,
    }
    write_json_atomic(paths.manifest, manifest, fsync=True)
    if not is_owned(paths.shards_dir):  # claimed in run_shard; checked again before deleting
        raise OwnershipError(f"fcap will not delete {paths.progress}: {paths.shards_dir} lost its "
                             "fcap marker")
    paths.progress.unlink(missing_ok=True)
    logger.info("pseudolabel: %s finished: %d clips of %d videos, %d failures, %.2f clips/s",
                paths.name, len(records), len(readable), len(failures), stats["clips_per_s"] or 0.0)
    if failures:
        logger.warning("pseudolabel: %s: %d of %d videos failed (%s); listed in %s", paths.name,
                       len(failures), len(videos), format_kinds(count_kinds(f["error"] for f in failures)),
                       paths.manifest)
    return manifest
