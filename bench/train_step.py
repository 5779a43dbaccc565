"""Training step with adapters from mid-network (paper) vs gradients through every layer.

Same model, same adapters (OPT-125m-shaped random LM, 12 layers, hidden 768,
adapters at layers 6, 8, 10, separable attention; batch 32, 32 text tokens,
precomputed t = 8 x 196 features). "mid": FrozenCaptioner as it is: nothing
below the first adapter requires grad, so autograd records no graph there and
backprop stops at layer 6 (Sec. 4). "mid-nograd": the same with layers 0-5 also
run under ``torch.no_grad()`` (what the removed ``grad_from_layer`` knob did; it
should buy nothing). "all": layer 0's input requires grad, as if something below
needed gradients, so the graph spans every layer.
A step is forward + backward + AdamW on the adapters. Each variant runs in a
fresh subprocess for its peak memory (bench/common.py).

    python bench/train_step.py [--device cuda --dtype bf16] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import (PeakMemory, autocast, bench_model, best_time, machine, mib,  # noqa: E402
                          parse, parser, run_worker, table)


def worker(variant: str, args) -> dict:
    model = bench_model().to(args.device)
    model.train()
    layers, first = model.lm.layers, model.adapter_layers[0]
    if variant == "mid-nograd":  # grad mode off from layer 0, back on at the first adapter
        def grad_mode(on: bool):
            def hook(module, args) -> None:
                torch.set_grad_enabled(on)
            return hook
        layers[0].register_forward_pre_hook(grad_mode(False))
        layers[first].register_forward_pre_hook(grad_mode(True))
    elif variant == "all":  # a graph from layer 0 up
        layers[0].register_forward_pre_hook(
            lambda module, args: (args[0].detach().requires_grad_(True), *args[1:]))
    torch.manual_seed(1)
    feats = torch.randn(args.batch, 8, 196, 768, device=args.device)
    ids = torch.randint(4, 400, (args.batch, args.tokens), device=args.device)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)

    def step():
        with autocast(args.device, args.dtype):
            loss = model(input_ids=ids, labels=ids, visual_features=feats).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with PeakMemory(args.device) as mem:  # the first step, AdamW state included (same in both)
        step()
    seconds = best_time(step, repeats=args.repeats, warmup=0, device=args.device)
    return {"seconds": seconds, "peak_bytes": mem.bytes}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--worker", metavar="VARIANT", help=argparse.SUPPRESS)
    args = parse(p)
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return
    flags = [f"--device={args.device}", f"--dtype={args.dtype}", f"--batch={args.batch}",
             f"--tokens={args.tokens}", f"--repeats={args.repeats}", f"--threads={args.threads}"]
    res = {v: run_worker(__file__, [v, *flags]) for v in ("mid", "mid-nograd", "all")}
    print(f"train step (fwd+bwd+AdamW), batch {args.batch}, {args.tokens} tokens, OPT-125m-shaped LM, "
          f"adapters at 6,8,10 (separable), {args.dtype}, best of {args.repeats}")
    print(f"machine: {machine(args.device)}")
    print(table(["variant", "step ms", "peak MiB"],
                [[v, f"{r['seconds'] * 1e3:.0f}", mib(r["peak_bytes"])] for v, r in res.items()]))
    print(json.dumps({
        "device": args.device, "dtype": args.dtype,
        "speedup_mid_vs_all": round(res["all"]["seconds"] / res["mid"]["seconds"], 3),
        "peak_mem_all_over_mid": round(res["all"]["peak_bytes"] / max(res["mid"]["peak_bytes"], 1), 3),
        "speedup_nograd_vs_mid": round(res["mid"]["seconds"] / res["mid-nograd"]["seconds"], 3),
        "peak_mem_mid_over_nograd": round(res["mid"]["peak_bytes"]
                                          / max(res["mid-nograd"]["peak_bytes"], 1), 3),
        "seconds": {v: r["seconds"] for v, r in res.items()},
        "peak_bytes": {v: r["peak_bytes"] for v, r in res.items()},
    }))


if __name__ == "__main__":
    main()
