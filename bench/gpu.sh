#!/usr/bin/env bash
# GPU figures in one command (issue 17), for one H100/H200 with no network:
#
#   bench/gpu.sh [--wheels DIR] [--out DIR] [--cpu-smoke] [--budget-s S] [--only PART,...]
#
# The machine brings Python 3.12, torch (CUDA), transformers, tensorboard, pyyaml,
# safetensors and tokenizers. --wheels DIR (made here by bench/gpu_wheels.sh) adds the
# rest offline: deepspeed, decord, av and their dependencies (bench/gpu_wheels.txt),
# then fcap itself from this tree (pip install --no-index --no-deps -e .).
# Then training, pseudolabelling, attention and generation benchmarks run, each with
# its own timeout inside a 460-s budget; each prints one JSON line, and a summary
# JSON line comes last (stdout; logs and results.jsonl in --out, default
# bench/out/gpu-<time>). --cpu-smoke: the same parts on the CPU at toy sizes
# (~1-2 min), to check the command before GPU time is spent. Details: bench/gpu_run.py
# and bench/README.md ("GPU").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-$(command -v python || command -v python3)}"
exec "$python" "$here/gpu_run.py" "$@"
