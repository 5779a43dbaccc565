"""Training throughput through fcap's DeepSpeed trainer, and ZeRO-2 optimizer-state sharding.

1. Throughput: ``fcap.train.Trainer`` (DeepSpeed ZeRO-2, 1 rank) on synthetic
   batches made on the training device (pixels -> frozen TimeSformer -> frozen
   OPT with adapters), so data decoding does not count; ``--modality video,image``
   runs video batches (all frames) and image batches (1 frame), each with a fresh
   model and engine. Rates are the median of the logged intervals after the first
   (warm-up); the end-of-run checkpoint is skipped (it is I/O, not training).
   ``--shape tiny``: the tiny profile's model; ``base``: OPT-125m-shaped LM
   (12 layers, hidden 768, adapters at 6, 8, 10) + TimeSformer-B-shaped encoder
   (224 px, patch 16, 8 frames, 12 layers, hidden 768); ``paper`` (default on
   cuda): OPT-1.3B dims (24 layers, hidden 2048, 32 heads, ffn 8192, vocab
   50272; bench.common.random_opt_dir) + the same encoder, separable adapters at
   12..22 with 16 heads; ``smoke``: the paper path at toy dims. Random weights.
   FLOPs per sample are counted (``counted_flops_per_sample``) and estimated
   (``flops_per_sample``); MFU on CUDA divides the counted rate by the GPU's
   dense bf16 peak.
2. ZeRO-2 sharding: the same engine on 1 rank and on 2 ranks (torchrun, gloo on
   CPU); bytes of optimizer state (fp32 master partition + AdamW moments) each
   rank holds after one step. Expect ~0.5 for 2 ranks.

    python bench/train.py [--device cpu|cuda] [--shape tiny|base|paper|smoke] [--precision fp32|bf16]
                          [--modality video[,image]] [--steps 40] [--log-every 5] [--batch 16]
                          [--image-batch N] [--threads 1] [--skip-zero] [--sanity [--seed S]]

3. ``--sanity``: the shapes learning check of tests/fcap/tasks (200 steps, batch 16,
   lr 5e-3 on cached features; CIDEr-D on the 40 held-out test videos) for the
   trained model, the same model with videos rolled across the batch at
   evaluation, a model trained on rolled videos, and untrained adapters.

Prints a table; the LAST line is one JSON object with ``steps_per_s``,
``samples_per_s``, ``zero2_state_per_rank_ratio`` and details (figures of the
first modality at the top level, every modality under ``by_modality``).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import lm_block  # noqa: E402
from fcap.components import load_builtins  # noqa: E402
from fcap.config import build_component, from_dict  # noqa: E402
from fcap.models import ModelConfig, build_model  # noqa: E402
from fcap.train import distributed  # noqa: E402
from fcap.train.config import TrainConfig  # noqa: E402
from fcap.train.engine import optimizer_state_bytes  # noqa: E402
from fcap.train.trainer import StepResult, Trainer, TrainRun  # noqa: E402
from registry import OPTIMIZERS, SCHEDULERS  # noqa: E402

SHAPES = {
    "tiny": {"lm": {"name": "opt", "source": "tiny"}, "visual": {"name": "timesformer", "source": "tiny"},
             "adapters": {"layers": [2, 3], "attention": {"heads": 4}}},
    "base": {"lm": {"name": "opt", "source": "tiny",
                    "tiny": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "ffn_dim": 3072,
                             "vocab_size": 8192, "max_positions": 2050}},
             "visual": {"name": "timesformer", "source": "tiny",
                        "tiny": {"image_size": 224, "patch_size": 16, "num_frames": 8, "hidden_size": 768,
                                 "num_layers": 12, "num_heads": 12, "intermediate_size": 3072}},
             "adapters": {"layers": [6, 8, 10], "attention": {"heads": 12}}},
}
# paper Sec. 5: OPT-1.3B + TimeSformer-B, separable adapters in front of layers 12..22
SHAPES["paper"] = {"lm": "paper", "visual": SHAPES["base"]["visual"],
                   "adapters": {"layers": [12, 14, 16, 18, 20, 22], "attention": {"heads": 16}}}
SHAPES["smoke"] = {"lm": "smoke", "visual": SHAPES["tiny"]["visual"], "adapters": SHAPES["tiny"]["adapters"]}
CAPTION = "a red square moves left on a blue background"
# dense bf16 TFLOP/s by device name, most specific first (H100 SXM and H200: 989)
PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
               ("GH200", 989.0), ("A100", 312.0))


class SyntheticVideos:
    """Endless identical-shape batches from a seeded generator on ``device`` (resumable).

    ``frames`` 1 with ``modality`` "image" gives image batches. Made on the device:
    a paper-sized video batch is 77M floats, which the CPU would take longer to draw
    than the GPU takes to train on it.
    """

    def __init__(self, *, batch: int, frames: int, size: int, device: str, modality: str = "video") -> None:
        self.batch, self.frames, self.size, self.device, self.n = batch, frames, size, device, 0
        self.modality = modality

    def __iter__(self):
        while True:
            g = torch.Generator(device=self.device).manual_seed(self.n)
            self.n += 1
            px = torch.randn(self.batch, self.frames, 3, self.size, self.size, generator=g, device=self.device)
            yield {"pixel_values": px, "frame_mask": torch.ones(self.batch, self.frames, dtype=torch.bool),
                   "captions": [CAPTION] * self.batch, "ids": [str(i) for i in range(self.batch)],
                   "modality": self.modality}

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state):
        self.n = state["n"]


def build(shape: str):
    load_builtins()
    body = dict(SHAPES[shape])
    if isinstance(body["lm"], str):  # an OPT with the real vocab, built once (bench/common.py)
        body["lm"] = lm_block(body["lm"])
    torch.manual_seed(0)
    return build_model(from_dict(ModelConfig, body, key="model"))


def make_trainer(model, args, run_dir: Path, info, *, steps: int, log_every: int,
                 modality: str = "video", batch: int | None = None) -> Trainer:
    device = distributed.device(info)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.precision]
    spec = model.image_spec
    size = batch or args.batch
    first = [True]

    def loss_fn(engine, batch) -> StepResult:
        if first[0] and device.type == "cuda":  # peak memory of training, not of the start-up casts
            torch.cuda.reset_peak_memory_stats()
        first[0] = False
        text = model.prepare_text(batch["captions"], 24)
        out = engine(**{k: v.to(device) for k, v in text.items()},
                     pixel_values=batch["pixel_values"].to(device, dtype),
                     frame_mask=batch["frame_mask"].to(device))
        return StepResult(out.loss, len(batch["ids"]), int(text["attention_mask"].sum()), batch["modality"])

    cfg = TrainConfig(steps=steps, batch_size=size, log_every=log_every, save_every=0,
                      precision=args.precision, zero_stage=2)
    loader = SyntheticVideos(batch=size, frames=spec.num_frames if modality == "video" else 1,
                             size=spec.image_size, device=str(device), modality=modality)
    return Trainer(cfg, model=model, loader=loader, loss_fn=loss_fn,
                   optimizer=build_component(OPTIMIZERS, {"name": "adamw", "lr": 1e-4}),
                   scheduler=build_component(SCHEDULERS, {"name": "constant"}),
                   run=TrainRun(run_dir=run_dir, config_hash="bench", seed=0, info=info))


def flops_per_sample(model, tokens_per_sample: float, frames: int | None = None) -> float:
    """Estimated training FLOPs per sample (matmuls only; attention scores ignored).

    Frozen encoder forward: 2 N_vis per visual token (``frames`` x patches; default
    the encoder's clip length, 1 for images). LM + adapters forward: 2 (N_lm + N_ad)
    per text token. Backward: activation gradients through the layers from the first
    adapter up (2 N_upper) and the adapters' weight gradients (2 N_ad more) per text
    token. This treats every adapter weight as applied per text token; the visual
    keys/values are in fact projected once per pooled visual token (t + s of them for
    separable attention), so it undercounts them: ``counted_flops_per_sample`` is
    what MFU uses.
    """
    n = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    adapters = sum(n(a) for a in model.adapters().values())
    lm = n(model.lm) - adapters
    layers = model.lm.layers
    upper = sum(n(layers[i]) for i in range(model.adapter_layers[0], len(layers))) - adapters
    spec = model.image_spec
    patches = (spec.image_size // model.visual.model.config.patch_size) ** 2
    vis_tokens = (frames or spec.num_frames) * patches
    return 2 * n(model.visual) * vis_tokens + tokens_per_sample * (2 * (lm + adapters) + 2 * upper + 4 * adapters)


def counted_flops_per_sample(model, *, frames: int, device: torch.device, samples: int = 2) -> float:
    """Training FLOPs per sample as torch counts them: one forward + backward of ``samples``.

    ``torch.utils.flop_counter.FlopCounterMode`` adds up every matmul, convolution
    and attention kernel actually run (frozen encoder, no-grad lower LM layers,
    adapters, the backward that autograd really computes), on a batch of the
    benchmark's shape. Run before DeepSpeed wraps the model (its gradient hooks
    must not see this pass); the gradients are dropped afterwards.
    """
    from torch.utils.flop_counter import FlopCounterMode

    spec = model.image_spec
    model.to(device).train()
    text = model.prepare_text([CAPTION] * samples, 24)
    px = torch.randn(samples, frames, 3, spec.image_size, spec.image_size, device=device)
    with FlopCounterMode(display=False) as counter:
        out = model(**{k: v.to(device) for k, v in text.items()}, pixel_values=px,
                    frame_mask=torch.ones(samples, frames, dtype=torch.bool, device=device))
        out.loss.backward()
    for p in model.parameters():
        p.grad = None
    return counter.get_total_flops() / samples


def peak_tflops(args) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS if k in name), None)


def throughput(args, modality: str = "video") -> dict:
    """One modality's run: fresh model and engine, ``args.steps`` steps."""
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    t0 = time.time()
    model = build(args.shape)
    build_s = time.time() - t0
    batch = args.image_batch if modality == "image" and args.image_batch else args.batch
    frames = model.image_spec.num_frames if modality == "video" else 1
    info = distributed.setup()
    try:
        dev = distributed.device(info)
        counted = counted_flops_per_sample(model, frames=frames, device=dev)
        with tempfile.TemporaryDirectory() as tmp:
            trainer = make_trainer(model, args, Path(tmp), info, steps=args.steps, log_every=args.log_every,
                                   modality=modality, batch=batch)
            trainer._save = lambda: None  # the end-of-run checkpoint is I/O, not training throughput
            summary = trainer.fit()
            rows = [json.loads(r) for r in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
        if dev.type == "cuda":  # since the first step (make_trainer's loss_fn resets it)
            peak = {"peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30}
        else:  # the process's peak resident set (all of it: model, engine, allocator)
            peak = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    finally:
        distributed.teardown(info)
    if len(rows) < 2:
        raise SystemExit(f"--steps {args.steps} / --log-every {args.log_every}: need >= 2 logged "
                         "intervals (the first is warm-up)")
    rates = [r["train/samples_per_s"] for r in rows[1:]]
    tok = [r["train/tokens_per_s"] for r in rows[1:]]
    samples_per_s = statistics.median(rates)
    tokens_per_sample = statistics.median(tok) / samples_per_s
    out = {"modality": modality, "batch": batch, "frames": frames, "samples_per_s": samples_per_s,
           "steps_per_s": samples_per_s / batch, "tokens_per_s": statistics.median(tok),
           "final_loss": summary["final_loss"], "bad_steps": summary["bad_steps"],
           "trainable_params": sum(p.numel() for p in model.trainable_parameters()),
           "params": sum(p.numel() for p in model.parameters()), "model_build_s": build_s,
           "flops_per_sample_counted": counted,
           "flops_per_sample_estimate": flops_per_sample(model, tokens_per_sample, frames),
           "tflops": counted * samples_per_s / 1e12, **peak}
    if args.device == "cuda":
        peak_tf = peak_tflops(args)
        out.update(gpu=torch.cuda.get_device_name(), peak_tflops=peak_tf,
                   mfu=out["tflops"] / peak_tf if peak_tf else None,
                   mfu_estimate=out["flops_per_sample_estimate"] * samples_per_s / 1e12 / peak_tf
                   if peak_tf else None)
    del trainer, model
    gc.collect()
    if args.device == "cuda":
        torch.cuda.empty_cache()
    return out


def zero_worker(out_dir: str) -> None:
    """One rank of the sharding measurement: build the engine, take one step, report bytes."""
    torch.set_num_threads(1)
    args = argparse.Namespace(precision="fp32", batch=4, shape="tiny")
    model = build("tiny")
    info = distributed.setup()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(model, args, Path(tmp), info, steps=1, log_every=1)
        trainer.fit()  # AdamW creates its moments at the first step
        result = {"rank": info.rank, "world_size": info.world_size,
                  "state_bytes": optimizer_state_bytes(trainer.engine),
                  "trainable_params": sum(p.numel() for p in model.trainable_parameters())}
    Path(out_dir, f"zero-{info.world_size}-{info.rank}.json").write_text(json.dumps(result))
    distributed.teardown(info)


def zero_sharding() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in distributed.ENV_KEYS}
    me = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, me, "--zero-worker", tmp], env=env, check=True,
                       capture_output=True)
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--master_addr", "127.0.0.1", "--master_port", str(distributed.free_port()),
                        me, "--zero-worker", tmp], env=env, check=True, capture_output=True)
        one = json.loads(Path(tmp, "zero-1-0.json").read_text())
        two = [json.loads(Path(tmp, f"zero-2-{r}.json").read_text()) for r in (0, 1)]
    per_rank = max(r["state_bytes"] for r in two)
    return {"zero2_state_bytes_1rank": one["state_bytes"],
            "zero2_state_bytes_2ranks": [r["state_bytes"] for r in two],
            "zero2_state_per_rank_ratio": per_rank / one["state_bytes"],
            "trainable_params": one["trainable_params"]}


def sanity(args) -> dict:
    """The learning sanity check's recipe (tests/fcap/tasks), with a trained-on-shuffled control."""
    import logging

    from fcap.context import StageContext
    from registry import TASKS

    torch.set_num_threads(args.threads)
    load_builtins()
    model = SHAPES["tiny"]
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        datasets = {"num_workers": 0, "root": str(root / "world"), "shapes_world": {}}
        source = {"name": "msrvtt", "root": "msrvtt"}

        def stage(name, task, body, init_from=None):
            entry = TASKS.get(task)
            ctx = StageContext(experiment="bench", variant="v", stage=name, run_dir=root / name,
                               config_hash=name, init_from=init_from, seed=args.seed,
                               logger=logging.getLogger(f"bench.{name}"))
            return entry.obj(from_dict(entry.config, body, key=name), ctx)

        feats = {}
        for split in ("train", "test"):
            s = stage(f"features-{split}", "extract_features",
                      {"model": model, "data": dict(source, split=split), "datasets": datasets})
            feats[split] = dict(source, split=split, features=s["out_dir"])
        train = {"model": model, "data": feats["train"], "datasets": datasets,
                 "optimizer": {"name": "adamw", "lr": 5e-3},
                 "train": {"steps": 200, "batch_size": 16, "log_every": 20, "save_every": 0}}
        t0 = time.time()
        out["sanity_final_loss"] = stage("trained", "caption_pretrain", train)["final_loss"]
        out["sanity_train_s"] = time.time() - t0
        stage("trained_on_shuffled", "caption_pretrain", dict(train, shuffle_videos=True))
        ev = {"model": model, "data": feats["test"], "datasets": datasets, "batch_size": 40,
              "scoring": {"metrics": ["cider", "bleu"]}}
        for name, extra, init in (("trained", {}, "trained"),
                                  ("shuffled_at_eval", {"shuffle_videos": True}, "trained"),
                                  ("trained_on_shuffled", {}, "trained_on_shuffled"),
                                  ("untrained", {}, None)):
            m = stage(f"eval-{name}", "caption_eval", dict(ev, **extra),
                      init_from=root / init if init else None)["metrics"]
            out[f"cider_{name}"], out[f"bleu4_{name}"] = m["CIDEr"], m["BLEU-4"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--shape", choices=list(SHAPES), default=None, help="default: tiny on cpu, paper on cuda")
    p.add_argument("--precision", choices=["fp32", "bf16"], default=None, help="default: fp32 cpu, bf16 cuda")
    p.add_argument("--modality", default="video", help="video, image, or a list: video,image")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--log-every", type=int, default=5, help="steps per logged interval (rates: median)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--image-batch", type=int, default=None, help="image batches' size (default: --batch)")
    p.add_argument("--threads", type=int, default=1, help="CPU intra-op threads")
    p.add_argument("--peak-tflops", type=float, default=None, help="GPU peak for MFU (default: by name)")
    p.add_argument("--skip-zero", action="store_true", help="skip the 1- vs 2-rank sharding runs")
    p.add_argument("--sanity", action="store_true", help="also run the shapes learning sanity check")
    p.add_argument("--seed", type=int, default=0, help="--sanity: experiment seed")
    p.add_argument("--zero-worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.zero_worker:
        return zero_worker(args.zero_worker)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device here")
    args.shape = args.shape or ("paper" if args.device == "cuda" else "tiny")
    modalities = args.modality.split(",")
    if not set(modalities) <= {"video", "image"}:
        p.error(f"--modality: {args.modality!r}; give video, image or video,image")
    args.precision = args.precision or ("bf16" if args.device == "cuda" else "fp32")
    t0 = time.time()
    result = {"device": args.device, "shape": args.shape, "precision": args.precision,
              "batch": args.batch, "threads": args.threads, "machine": platform.machine(),
              "cpus": os.cpu_count(), "torch": torch.__version__}
    runs = {m: throughput(args, m) for m in modalities}
    result.update(runs[modalities[0]])
    result["by_modality"] = runs
    if not args.skip_zero:
        result.update(zero_sharding())
    if args.sanity:
        result.update(sanity(args))
    result["wall_s"] = time.time() - t0
    print(f"\nTraining benchmark ({args.shape} model, {args.device}, {args.precision}, "
          f"ZeRO-2, 1 rank, {args.threads} thread(s))")
    keys = ("batch", "samples_per_s", "steps_per_s", "tokens_per_s", "tflops", "mfu", "mfu_estimate",
            "peak_mem_gib", "peak_rss_mib", "flops_per_sample_counted", "flops_per_sample_estimate",
            "model_build_s")
    print("| metric | " + " | ".join(modalities) + " |\n|---|" + "---|" * len(modalities))
    for key in keys:
        if key in runs[modalities[0]]:
            cells = [runs[m].get(key) for m in modalities]
            print(f"| {key} | " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in cells) + " |")
    print("| metric | value |\n|---|---|")
    for key in ("zero2_state_bytes_1rank", "zero2_state_bytes_2ranks", "zero2_state_per_rank_ratio",
                "trainable_params", "params", "sanity_train_s", "sanity_final_loss", "cider_trained",
                "cider_shuffled_at_eval", "cider_trained_on_shuffled", "cider_untrained",
                "bleu4_trained", "bleu4_shuffled_at_eval", "bleu4_trained_on_shuffled", "bleu4_untrained"):
        if key in result:
            v = result[key]
            print(f"| {key} | {v:.4g} |" if isinstance(v, float) else f"| {key} | {v} |")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
