"""Greedy captioning: visual K/V reused across tokens vs recomputed at every token.

20 new tokens, greedy, batch 16 (eval-sized; --batch 4 for small batches), precomputed features (t = 8 frames x 196 patches,
width 768), an OPT-125m-shaped random LM (12 layers, hidden 768) with adapters
at layers 6, 8, 10, for separable and full cross-attention. Compared against one
teacher-forced forward of the same length (BOS + 20 tokens).

    python bench/generation.py [--device cuda --dtype bf16] [--repeats 3]

Last line: one JSON object; ``reuse_speedup`` and ``tokens20_over_forward`` are
keyed by attention.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import autocast, bench_model, best_time, machine, parse, parser, table  # noqa: E402


def measure(attention: str, args) -> dict:
    from fcap.models import DecodingConfig

    model = bench_model(attention=attention).to(args.device)
    torch.manual_seed(1)
    feats = torch.randn(args.batch, args.frames, 196, 768, device=args.device)
    # no EOS: every row runs all 20 steps (EOS would end the loop early, at random)
    model.lm.eos_token_id = -1
    decoding = DecodingConfig(strategy="greedy", max_new_tokens=args.tokens)
    ids = torch.randint(4, 400, (args.batch, args.tokens + 1), device=args.device)

    def generate(reuse: bool):
        def run():
            with autocast(args.device, args.dtype):
                out = model.generate_ids(visual_features=feats, decoding=decoding, reuse_visual=reuse)
            assert out.shape[1] == args.tokens
        return run

    def forward():
        with torch.no_grad(), autocast(args.device, args.dtype):
            model(input_ids=ids, visual_features=feats)

    t = lambda fn: best_time(fn, repeats=args.repeats, warmup=1, device=args.device)  # noqa: E731
    return {"reuse": t(generate(True)), "recompute": t(generate(False)), "forward": t(forward)}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--tokens", type=int, default=20)
    args = parse(p)
    names = ("separable", "full")
    res = {n: measure(n, args) for n in names}
    print(f"greedy {args.tokens} tokens, batch {args.batch}, t={args.frames}x196 features, OPT-125m-shaped "
          f"LM, adapters at 6,8,10, {args.dtype}, best of {args.repeats}")
    print(f"machine: {machine(args.device)}")
    rows = [[n, f"{r['reuse'] * 1e3:.0f}", f"{r['recompute'] * 1e3:.0f}", f"{r['forward'] * 1e3:.0f}",
             f"{r['recompute'] / r['reuse']:.2f}x", f"{r['reuse'] / r['forward']:.2f}"] for n, r in res.items()]
    print(table(["attention", "reuse ms", "recompute ms", "1 forward ms", "reuse speedup",
                 "20 tokens / forward"], rows))
    print(json.dumps({
        "device": args.device, "dtype": args.dtype,
        "reuse_speedup": {n: round(r["recompute"] / r["reuse"], 3) for n, r in res.items()},
        "tokens20_over_forward": {n: round(r["reuse"] / r["forward"], 3) for n, r in res.items()},
        "seconds": res,
    }))


if __name__ == "__main__":
    main()
