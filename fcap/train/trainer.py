"""The step loop: DeepSpeed updates, bad-step skipping, logging, checkpoints, resume.

Model- and data-agnostic: a task supplies ``loss_fn(engine, batch) ->
StepResult``, a resumable ``loader`` (iterable with ``state_dict()`` /
``load_state_dict()``), where the run lives (:class:`TrainRun`) and what else to
report (:class:`TrainHooks`: named scalars, counts, validation); see
``fcap/train/README.md``.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

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


@dataclass(frozen=True)
class TrainRun:
    """Where one training run lives and who runs it: directory, identity, seed, rank."""

    run_dir: Path  # checkpoints/, metrics.jsonl, tensorboard/, ranks/ go here
    config_hash: str  # a checkpoint written under another hash is refused
    seed: int  # of the data order and of dropout (each rank adds its own offset)
    info: DistInfo
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("fcap.train"))
    stop_after: int | None = None  # tests: save and raise TrainingInterrupted after this step

    @classmethod
    def of_stage(cls, ctx, *, seed: int, info: DistInfo) -> "TrainRun":
        """The run of a stage (``fcap.context.StageContext``); ``stop_after`` from ``ctx.extra``."""
        return cls(run_dir=Path(ctx.run_dir), config_hash=ctx.config_hash, seed=seed, info=info,
                   logger=ctx.logger, stop_after=ctx.extra.get("stop_after"))


@dataclass(frozen=True)
class TrainHooks:
    """What the trainer reports besides its own step statistics.

    ``scalars`` and ``counts`` return values by TensorBoard tag, ``group/name``
    (``gates/layer2/attn``, ``data/skipped_items``); they are logged at every log
    step, and the summary holds their final values by group
    (``summary["gates"]["layer2/attn"]``).
    """

    # values that are the same on every rank (e.g. FrozenCaptioner.scalars); logged from rank 0
    scalars: Callable[[], Mapping[str, float]] | None = None
    # this rank's counts, summed over ranks: every rank calls it at the same steps
    counts: Callable[[], Mapping[str, float]] | None = None
    # step -> validation scores, logged as val/<name> every train.eval_every steps
    evaluate: Callable[[int], Mapping[str, float]] | None = None


class Trainer:
    def __init__(self, cfg: TrainConfig, *, model: torch.nn.Module, loader: Any,
                 loss_fn: Callable[[Any, Any], StepResult], optimizer: Component,
                 scheduler: Component, run: TrainRun, hooks: TrainHooks = TrainHooks(),
                 params: Iterable | None = None) -> None:
        """``params``: what the optimizer updates (default ``model.trainable_parameters()``)."""
        self.cfg, self.loader, self.loss_fn, self.hooks = cfg, loader, loss_fn, hooks
        self.info, self.logger, self.seed = run.info, run.logger, run.seed
        self.run_dir, self.config_hash, self.stop_after = Path(run.run_dir), run.config_hash, run.stop_after
        self.engine = build_engine(model, cfg=cfg, optimizer=optimizer, scheduler=scheduler,
                                   info=run.info, params=params)
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
                if cfg.eval_every and self.hooks.evaluate and self.step % cfg.eval_every == 0:
                    self.engine.eval()
                    with torch.no_grad():
                        scores = self.hooks.evaluate(self.step)
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
        hooked = self._counts()  # a collective call: every rank
        if self.hooks.scalars is not None and self.info.is_main:
            hooked.update(self.hooks.scalars())
        for tag in hooked:  # at the first log step, not after the whole run
            _check_tag(tag)
        values.update(hooked)
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
        extra = dict(self._counts())
        if self.hooks.scalars is not None:
            extra.update(self.hooks.scalars())
        for tag, value in extra.items():
            group, _, name = _check_tag(tag, taken=summary)
            summary.setdefault(group, {})[name] = value
        return summary

    def _counts(self) -> dict[str, float]:
        """``hooks.counts`` summed over ranks (one all-reduce; {} without counts)."""
        if self.hooks.counts is None:
            return {}
        mine = self.hooks.counts()
        keys = sorted(mine)
        if not keys:
            return {}
        return dict(zip(keys, all_reduce([float(mine[k]) for k in keys], info=self.info)))


def _check_tag(tag: str, *, taken: dict | None = None) -> tuple[str, str, str]:
    """``group/name`` of a hook's tag; a group must not be one of the summary's own keys."""
    group, slash, name = tag.partition("/")
    if not (group and name) or (taken and group in taken and not isinstance(taken[group], dict)):
        own = f" other than the summary's own keys ({', '.join(taken)})" if taken else ""
        raise ValueError(f"scalar tag {tag!r}: name it 'group/name' with a group{own}")
    return group, slash, name


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
