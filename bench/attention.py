"""Full vs separable vs perceiver adapters: forward + backward time and peak memory.

Paper dims: LM hidden 2048 (OPT-1.3B), visual 768 (TimeSformer-B), 16 heads,
32 text tokens, 196 patches, batch 4, t in 1, 8, 16, 32, 96. Measured: one
adapter's gated cross-attention branch, ``x + gate(xattn(LN(x), v))``, the part
that differs between the three; ``--with-ffn`` adds the adapter's gated FFN
branch (identical for all three: 32 tokens x 2048 x 8192). Gradients flow to the
adapter's parameters and the text states, never to the frozen visual features.

    python bench/attention.py                 # CPU fp32
    python bench/attention.py --quick         # fewer repeats
    python bench/attention.py --device cuda --dtype bf16 --frames 8,16,32,96

On CPU each (attention, t) runs in a fresh subprocess (see bench/common.py for
the memory method); on CUDA all run in this process (``--in-process``, the
default there: ``max_memory_allocated`` is reset per configuration, and a
dozen CUDA start-ups would cost more than the measurements). ``--in-process``
on CPU reports no peak memory (the process's peak covers every configuration).
Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import (PeakMemory, autocast, best_time, machine, mib,
                          parse, parser, run_worker, table)  # noqa: E402

NAMES = ("full", "separable", "perceiver")


def worker(name: str, t: int, args) -> dict:
    import fcap.models  # noqa: F401
    from fcap.config.schema import build_component
    from fcap.models.adapter import Adapter
    from registry import CROSS_ATTENTIONS, GATES

    torch.manual_seed(0)
    device = args.device
    attention = build_component(CROSS_ATTENTIONS, {"name": name, "heads": args.heads})
    gate = build_component(GATES, {"name": "vector", "init": 1.0})
    adapter = Adapter(dim=args.dim, visual_dim=args.visual_dim, attention=attention, gate=gate,
                      ffn_mult=4).to(device)
    x = torch.randn(args.batch, args.tokens, args.dim, device=device, requires_grad=True)
    v = torch.randn(args.batch, t, args.patches, args.visual_dim, device=device)

    def step():
        with autocast(device, args.dtype):
            if args.with_ffn:
                out = adapter(x, adapter.prepare(v, None))
            else:
                xattn = adapter.xattn
                out = x + adapter.gate_attn(xattn.attend(adapter.norm_attn(x), xattn.prepare(v, None)))
        out.float().sum().backward()
        adapter.zero_grad(set_to_none=True)
        x.grad = None

    with PeakMemory(device) as mem:
        seconds = best_time(step, repeats=args.repeats, warmup=args.warmup, device=device)
    return {"seconds": seconds, "peak_bytes": mem.bytes}


def in_process(name: str, t: int, args) -> dict:
    out = worker(name, t, args)
    if args.device == "cuda":
        torch.cuda.empty_cache()
    else:
        out["peak_bytes"] = None  # ru_maxrss is this process's peak over every configuration
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--frames", default="1,8,16,32,96")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--patches", type=int, default=196)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--visual-dim", type=int, default=768)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--with-ffn", action="store_true", help="time the whole adapter (+ gated FFN)")
    p.add_argument("--quick", action="store_true",
                   help="1 repeat; warm-up only for t < 32 (big CPU steps barely warm up)")
    p.add_argument("--in-process", action=argparse.BooleanOptionalAction, default=None,
                   help="run every configuration in this process (default: on cuda only)")
    p.add_argument("--worker", nargs=2, metavar=("ATTENTION", "T"), help=argparse.SUPPRESS)
    args = parse(p)
    if args.quick:
        args.repeats = 1
    if args.worker:
        if args.quick and int(args.worker[1]) >= 32:
            args.warmup = 0
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args)))
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device here")
    frames = [int(t) for t in args.frames.split(",")]
    passthrough = [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in
                   ("device", "dtype", "threads", "batch", "tokens", "patches", "dim", "visual_dim", "heads",
                    "repeats", "warmup")] + ["--quick"] * args.quick + ["--with-ffn"] * args.with_ffn
    if args.in_process is None:
        args.in_process = args.device == "cuda"
    if args.in_process:
        res = {(n, t): in_process(n, t, args) for t in frames for n in NAMES}
    else:
        res = {(n, t): run_worker(__file__, [n, str(t), *passthrough]) for t in frames for n in NAMES}
    mem = lambda b: "-" if b is None else mib(b)  # noqa: E731
    rows = [[t, *(f"{res[n, t]['seconds'] * 1e3:.1f}" for n in NAMES),
             *(mem(res[n, t]["peak_bytes"]) for n in NAMES),
             f"{res['full', t]['seconds'] / res['separable', t]['seconds']:.1f}x",
             f"{res['perceiver', t]['seconds'] / res['separable', t]['seconds']:.1f}x"] for t in frames]
    what = "whole adapter" if args.with_ffn else "adapter cross-attention branch"
    print(f"{what} forward+backward, batch {args.batch}, {args.tokens} text tokens, {args.patches} "
          f"patches, hidden {args.dim}, visual {args.visual_dim}, {args.heads} heads, {args.dtype}, "
          f"best of {args.repeats}" + (" (quick: warm-up only for t < 32)" if args.quick else
                                        f" after {args.warmup} warm-up"))
    print(f"machine: {machine(args.device)}")
    has_mem = all(r["peak_bytes"] is not None for r in res.values())
    print(table(["t", "full ms", "separable ms", "perceiver ms", "full MiB", "separable MiB",
                 "perceiver MiB", "full/sep", "perc/sep"], rows))
    key = lambda f: {str(t): round(f(t), 3) for t in frames}  # noqa: E731
    out = {
        "device": args.device, "dtype": args.dtype, "batch": args.batch, "machine": machine(args.device),
        "speedup_separable_vs_full": key(lambda t: res["full", t]["seconds"] / res["separable", t]["seconds"]),
        "speedup_separable_vs_perceiver": key(
            lambda t: res["perceiver", t]["seconds"] / res["separable", t]["seconds"]),
        "peak_mem_full_over_separable": key(
            lambda t: res["full", t]["peak_bytes"] / max(res["separable", t]["peak_bytes"], 1))
        if has_mem else None,
        "peak_bytes": {n: {str(t): res[n, t]["peak_bytes"] for t in frames} for n in NAMES},
        "seconds": {n: key(lambda t, n=n: res[n, t]["seconds"]) for n in NAMES},
    }
    if 8 in frames and 96 in frames:
        out["separable_t96_over_t8"] = round(res["separable", 96]["seconds"] / res["separable", 8]["seconds"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
