"""The step loop: DeepSpeed updates, bad-step skipping, logging, checkpoints, resume.

Model- and data-agnostic: a task supplies ``loss_fn(engine, batch) ->
StepResult`` and a resumable ``loader`` (iterable with ``state_dict()`` /
``load_state_dict()``); see ``fcap/train/README.md``.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from fcap.config import Component
from fcap.train import checkpoint, preemption, rng
from fcap.train.config import TrainConfig
from fcap.train.distributed import DistInfo, all_reduce
from fcap.train.engine import build_engine
from fcap.train.monitor import Monitor
from fcap.train.preemption import TrainingInterrupted


@dataclass
class StepResult:
    """What one micro-batch's forward pass reports to the trainer."""

    loss: torch.Tensor  # scalar, mean over the micro-batch's tokens
    samples: int  # items in the micro-batch
    tokens: int  # text tokens the LM saw (attention-mask sum)
    modality: str  # "image" or "video"


class TrainingDiverged(RuntimeError):
    """``max_bad_steps`` consecutive steps had a non-finite loss or gradient."""


class Trainer:
    def __init__(self, cfg: TrainConfig, *, model: torch.nn.Module, loader: Any,
                 loss_fn: Callable[[Any, Any], StepResult], optimizer: Component,
                 scheduler: Component, run_dir: Path, config_hash: str, seed: int, info: DistInfo,
                 logger: logging.Logger | None = None, params: Iterable | None = None,
                 gate_values: Callable[[], dict[str, float]] | None = None,
                 evaluate: Callable[[int], dict[str, float]] | None = None,
                 extra_scalars: Callable[[], dict[str, float]] | None = None,
                 stop_after: int | None = None) -> None:
        self.cfg, self.info, self.loader, self.loss_fn = cfg, info, loader, loss_fn
        self.run_dir, self.config_hash = Path(run_dir), config_hash
        self.logger = logger or logging.getLogger("fcap.train")
        self.gate_values, self.evaluate, self.extra_scalars = gate_values, evaluate, extra_scalars
        self.stop_after = stop_after
        self.seed = seed
        self.engine = build_engine(model, cfg=cfg, optimizer=optimizer, scheduler=scheduler,
                                   info=info, params=params)
        self.ckpt_root = self.run_dir / "checkpoints"
        self.counters = {"samples": 0, "tokens": 0, "bad_steps": 0, "train_seconds": 0.0,
                         "image_batches": 0, "video_batches": 0}
        self.step = 0
        self.streak = 0
        self.last_loss = float("nan")
        self.resumed_from: int | None = None
        self.fallbacks: list[str] = []

    # -- resume ---------------------------------------------------------------
    def _resume(self) -> None:
        def report(msg: str) -> None:
            self.fallbacks.append(msg)
            if self.info.is_main:
                self.logger.warning(msg)

        found = checkpoint.latest_valid(self.ckpt_root, report=report)
        if found is None:
            if self.fallbacks:
                report("no usable checkpoint left; starting from step 0")
            rng.seed_everything(self.seed + 7919 * self.info.rank)
            self.stream = iter(self.loader)
            return
        state, meta = checkpoint.load(self.engine, found, info=self.info, config_hash=self.config_hash)
        self.step = self.resumed_from = found.step
        self.counters.update(meta["counters"])
        self.streak = meta.get("streak", 0)
        last = meta.get("last_loss")
        self.last_loss = float("nan") if last is None else last
        self.loader.load_state_dict(state["data"])
        self.stream = iter(self.loader)
        rng.restore(state["rng"])
        if self.info.is_main:
            self.logger.info("resumed from %s (step %d)", found.path, found.step)

    def _save(self) -> Path:
        meta = {"config_hash": self.config_hash, "counters": dict(self.counters), "streak": self.streak,
                "last_loss": self.last_loss if math.isfinite(self.last_loss) else None}
        state = {"rng": rng.capture(), "data": self.loader.state_dict()}
        return checkpoint.save(self.engine, root=self.ckpt_root, step=self.step, rank_state=state,
                               meta=meta, info=self.info, keep_last=self.cfg.keep_last)

    def _next_batch(self):
        try:
            return next(self.stream)
        except StopIteration:  # end of an epoch: the loader starts the next one
            self.stream = iter(self.loader)
            return next(self.stream)

    # -- one optimizer step -------------------------------------------------------
    def _train_step(self) -> dict[str, float]:
        engine = self.engine
        loss_sum, nonfinite, samples, tokens, video, image = 0.0, 0.0, 0, 0, 0, 0
        for _ in range(self.cfg.grad_accum):
            res = self.loss_fn(engine, self._next_batch())
            loss = res.loss
            if self.step in self.cfg.debug_nan_steps:
                loss = loss * float("nan")
            engine.backward(loss)
            engine.step()
            value = float(loss.detach())
            if math.isfinite(value):
                loss_sum += value
            else:
                nonfinite = 1.0
            samples, tokens = samples + res.samples, tokens + res.tokens
            video += res.modality == "video"
            image += res.modality == "image"
        applied = 1.0 if engine.was_step_applied() else 0.0
        local = {"loss": loss_sum / self.cfg.grad_accum, "samples": samples, "tokens": tokens,
                 "video_batches": video, "image_batches": image, "nonfinite": nonfinite}
        # One all-reduce per step carries the stats and the checkpoint request flags
        # (sums > 0 <=> some rank has the flag set).
        requested, stop = preemption.pending()
        glob = all_reduce([local["loss"], samples, tokens, video, image, nonfinite, 1.0 - applied,
                           float(requested), float(stop)], info=self.info)
        n = self.info.world_size
        out = {"loss": glob[0] / n, "samples": glob[1], "tokens": glob[2], "video_batches": glob[3],
               "image_batches": glob[4], "nonfinite": glob[5] > 0, "skipped": glob[6] > 0,
               "requested": glob[7] > 0, "stop": glob[8] > 0, "local": local}
        # fp16's dynamic loss scale skips overflowing steps by design: those are
        # not bad steps unless the loss itself was non-finite.
        overflow_is_bad = self.cfg.precision != "fp16"
        out["bad"] = out["nonfinite"] or (out["skipped"] and overflow_is_bad)
        return out

    # -- the loop ---------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        cfg, info = self.cfg, self.info
        self._resume()  # a request made before this point is honoured after the first step
        monitor = Monitor(self.run_dir, info=info, total_steps=cfg.total_steps, start_step=self.step,
                          logger=self.logger)
        interval = _Interval()
        saved_at = self.step if self.resumed_from is not None else None
        try:
            self.engine.train()
            while self.step < cfg.total_steps:
                self.step += 1
                t0 = time.perf_counter()
                out = self._train_step()
                dt = time.perf_counter() - t0
                self.counters["train_seconds"] += dt
                for k in ("samples", "tokens", "image_batches", "video_batches"):
                    self.counters[k] += int(out[k])
                interval.add(out, dt)
                if out["bad"]:
                    self._bad_step(out)
                else:
                    self.streak = 0
                    self.last_loss = out["loss"]
                monitor.advance(self.step, out["loss"])
                if self.step % cfg.log_every == 0 or self.step == cfg.total_steps:
                    self._log(monitor, interval, out)
                    interval = _Interval()
                if cfg.eval_every and self.evaluate and self.step % cfg.eval_every == 0:
                    self.engine.eval()
                    with torch.no_grad():
                        scores = self.evaluate(self.step)
                    self.engine.train()
                    monitor.scalars(self.step, {f"val/{k}": v for k, v in scores.items()})
                if cfg.save_every and self.step % cfg.save_every == 0 and self.streak == 0:
                    self._save()
                    saved_at = self.step
                # flags as of the end of this step's update, agreed across ranks
                requested, stop = out["requested"], out["stop"]
                if requested or self.step == self.stop_after:
                    if saved_at != self.step:
                        self._save()
                    saved_at = self.step
                    path = self.ckpt_root / checkpoint.step_name(self.step)
                    if requested:
                        preemption.clear()  # consumed
                    if self.step == self.stop_after or stop:
                        reason = "checkpoint requested" if requested else "stop_after"
                        raise TrainingInterrupted(self.step, path, reason)
            if saved_at != self.step:
                self._save()
        finally:
            monitor.close()
        return self._summary()

    def _bad_step(self, out: dict) -> None:
        self.streak += 1
        self.counters["bad_steps"] += 1
        what = "loss" if out["nonfinite"] else "gradients"
        if self.info.is_main:
            self.logger.warning("step %d: non-finite %s, update skipped (%d bad step(s) in a row, "
                                "%d in total)", self.step, what, self.streak, self.counters["bad_steps"])
        if self.streak >= self.cfg.max_bad_steps:
            found = checkpoint.latest_valid(self.ckpt_root, report=lambda _m: None)
            last = found.path if found else "none (no checkpoint saved yet)"
            raise TrainingDiverged(
                f"stage stopped at step {self.step}: {self.streak} consecutive bad steps "
                f"(non-finite loss or gradients; max_bad_steps={self.cfg.max_bad_steps}); "
                f"last good checkpoint: {last}")

    def _log(self, monitor: Monitor, interval: "_Interval", out: dict) -> None:
        engine = self.engine
        norm = engine.get_global_grad_norm()
        norm = float(norm) if norm is not None else float("nan")
        batches = max(interval.image + interval.video, 1)
        values = {
            "train/loss": interval.mean_loss(), "train/lr": engine.get_lr()[0],
            "train/grad_norm": norm, "train/samples_per_s": interval.samples / interval.seconds,
            "train/tokens_per_s": interval.tokens / interval.seconds,
            "train/video_fraction": interval.video / batches,
            "train/image_fraction": interval.image / batches,
            "train/bad_steps": self.counters["bad_steps"], "train/bad_streak": self.streak,
        }
        if self.extra_scalars is not None:
            extra = self.extra_scalars()
            keys = sorted(extra)
            for k, v in zip(keys, all_reduce([float(extra[k]) for k in keys], info=self.info)):
                values[f"data/{k}"] = v
        if self.gate_values is not None and self.info.is_main:
            values.update({f"gates/{k}": v for k, v in self.gate_values().items()})
        monitor.scalars(self.step, values)
        monitor.rank_scalars(self.step, out["local"])

    def _summary(self) -> dict[str, Any]:
        c = self.counters
        summary = {
            "steps": self.step, "final_loss": self.last_loss if math.isfinite(self.last_loss) else None,
            "bad_steps": c["bad_steps"], "samples": c["samples"], "tokens": c["tokens"],
            "image_batches": c["image_batches"], "video_batches": c["video_batches"],
            "samples_per_s": c["samples"] / c["train_seconds"] if c["train_seconds"] else None,
            "resumed_from": self.resumed_from, "checkpoint_fallbacks": self.fallbacks,
            "world_size": self.info.world_size,
        }
        if self.gate_values is not None:
            summary["gates"] = self.gate_values()
        if self.extra_scalars is not None:
            extra = self.extra_scalars()
            keys = sorted(extra)
            summary["skipped"] = dict(zip(keys, all_reduce([float(extra[k]) for k in keys],
                                                           info=self.info)))
        return summary


class _Interval:
    """Sums over the steps between two log lines."""

    def __init__(self) -> None:
        self.loss = self.good = self.samples = self.tokens = self.image = self.video = 0
        self.seconds = 0.0

    def add(self, out: dict, dt: float) -> None:
        if not out["bad"]:
            self.loss += out["loss"]
            self.good += 1
        self.samples += out["samples"]
        self.tokens += out["tokens"]
        self.image += out["image_batches"]
        self.video += out["video_batches"]
        self.seconds += dt

    def mean_loss(self) -> float:
        return self.loss / self.good if self.good else float("nan")
