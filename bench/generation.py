"""Greedy captioning (transformers generate()): visual K/V reused across tokens vs recomputed at every token.

20 new tokens, greedy, batch 16 (eval-sized; --batch 4 for small batches, or a list
such as --batch 16,64), precomputed features (t = 8 frames x 196 patches, width 768),
for separable and full cross-attention, compared against one teacher-forced
forward of the same length (BOS + 20 tokens). ``--shape``: ``opt125m`` (default,
a random OPT-125m-shaped LM, 12 layers, hidden 768, adapters at 6, 8, 10),
``paper`` (OPT-1.3B dims: 24 layers, hidden 2048, vocab 50272, adapters at
12..22, 16 heads) or ``smoke`` (the paper path at toy dims, for bench/gpu.sh --cpu-smoke).

    python bench/generation.py [--device cuda --dtype bf16] [--shape paper] [--batch 16,64] [--repeats 3]

Last line: one JSON object; ``reuse_speedup`` and ``tokens20_over_forward`` are
keyed by attention (first batch size); ``by_batch`` holds every batch size.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import (MODEL_SHAPES, autocast, bench_model, best_time, machine, parse, parser,  # noqa: E402
                          table, visual_shape)


def measure(attention: str, args, batches: list[int]) -> dict[int, dict]:
    from fcap.models import DecodingConfig

    from transformers.utils import logging as hf_logging

    model = bench_model(attention=attention, shape=args.shape).to(args.device)
    # no EOS: every row runs all 20 steps (EOS would end generate() early, at random);
    # transformers warns about the negative id on every call, hence the quiet logging
    model.lm.eos_token_id = -1
    hf_logging.set_verbosity_error()
    decoding = DecodingConfig(strategy="greedy", max_new_tokens=args.tokens)
    width, patches = visual_shape(args.shape)
    vocab = len(model.lm.tokenizer)
    out = {}
    for batch in batches:
        torch.manual_seed(1)
        feats = torch.randn(batch, args.frames, patches, width, device=args.device)
        ids = torch.randint(4, vocab, (batch, args.tokens + 1), device=args.device)

        def generate(reuse: bool):
            def run():
                with autocast(args.device, args.dtype):
                    ids_out = model.generate_ids(visual_features=feats, decoding=decoding, reuse_visual=reuse)
                assert ids_out.shape[1] == args.tokens
            return run

        def forward():
            with torch.no_grad(), autocast(args.device, args.dtype):
                model(input_ids=ids, visual_features=feats)

        t = lambda fn: best_time(fn, repeats=args.repeats, warmup=1, device=args.device)  # noqa: E731
        out[batch] = {"reuse": t(generate(True)), "recompute": t(generate(False)), "forward": t(forward)}
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batch", default="16", help="batch size, or a comma-separated list")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--shape", default="opt125m", choices=list(MODEL_SHAPES))
    args = parse(p)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device here")
    batches = [int(b) for b in args.batch.split(",")]
    names = ("separable", "full")
    res = {n: measure(n, args, batches) for n in names}
    spec = MODEL_SHAPES[args.shape]
    _, patches = visual_shape(args.shape)
    print(f"greedy {args.tokens} tokens, t={args.frames}x{patches} features, {args.shape}-shaped LM, "
          f"adapters at {','.join(map(str, spec['layers']))}, {args.dtype}, best of {args.repeats}")
    print(f"machine: {machine(args.device)}")
    rows = [[n, b, f"{r['reuse'] * 1e3:.0f}", f"{r['recompute'] * 1e3:.0f}", f"{r['forward'] * 1e3:.0f}",
             f"{r['recompute'] / r['reuse']:.2f}x", f"{r['reuse'] / r['forward']:.2f}"]
            for n in names for b, r in res[n].items()]
    print(table(["attention", "batch", "reuse ms", "recompute ms", "1 forward ms", "reuse speedup",
                 f"{args.tokens} tokens / forward"], rows))

    def figures(b: int) -> dict:
        return {"reuse_speedup": {n: round(res[n][b]["recompute"] / res[n][b]["reuse"], 3) for n in names},
                "tokens20_over_forward": {n: round(res[n][b]["reuse"] / res[n][b]["forward"], 3) for n in names},
                "captions_per_s": {n: round(b / res[n][b]["reuse"], 2) for n in names},
                "seconds": {n: res[n][b] for n in names}}

    print(json.dumps({"device": args.device, "dtype": args.dtype, "shape": args.shape, "batch": batches[0],
                      "machine": machine(args.device), **figures(batches[0]),
                      "by_batch": {str(b): figures(b) for b in batches}}))


if __name__ == "__main__":
    main()
