"""Shared helpers for the model benchmarks: timing, peak memory, subprocess workers, tables.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` minus what was allocated
before the measured steps. On CPU, each configuration runs in its own fresh
subprocess and reports ``ru_maxrss`` (the process's peak resident set) minus its
resident set just before the measured steps: the extra memory the step needed.
"""
from __future__ import annotations

import argparse

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]


def dtype_of(name: str) -> torch.dtype:
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def autocast(device: str, dtype: str):
    if dtype == "fp32":
        return torch.autocast(device_type=device, enabled=False)
    return torch.autocast(device_type=device, dtype=dtype_of(dtype))


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Extra memory needed by the code run inside ``with`` (bytes; see module doc)."""

    def __init__(self, device: str) -> None:
        self.device, self.bytes = device, 0

    def __enter__(self) -> "PeakMemory":
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = rss_bytes()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.bytes = torch.cuda.max_memory_allocated() - self.base
        else:
            self.bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.base


def best_time(fn: Callable[[], Any], *, repeats: int, warmup: int, device: str) -> float:
    """Fastest of ``repeats`` runs after ``warmup`` (seconds).

    The minimum, as timeit recommends: on a shared machine the slower runs measure
    the neighbours, not the code.
    """
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def run_worker(script: str, args: list[str], *, timeout: float = 900) -> dict:
    """Run ``python script --worker ...`` in a fresh process; return its last-line JSON."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, script, "--worker", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{script} worker {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, no GPU used (torch {torch.__version__})"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def mib(n: float) -> str:
    return f"{n / 2**20:.0f}"


def bench_model(*, attention: str = "separable", layers=(6, 8, 10), lm_layers: int = 12,
                hidden: int = 768, heads: int = 12, visual_dim: int = 768, patches_side: int = 14):
    """A random FrozenCaptioner with OPT-125m's LM shape (default) built via ``source: tiny``.

    Weights are random (no downloads here); timings only depend on shapes. The
    visual encoder is a 1-layer TimeSformer with the paper's visual width and 196
    patches; benchmarks feed precomputed features, as the feature cache does.
    """
    import fcap.models  # noqa: F401
    from fcap.config.schema import from_dict
    from fcap.models import ModelConfig, build_model

    cfg = from_dict(ModelConfig, {
        "lm": {"name": "opt", "source": "tiny",
               "tiny": {"hidden_size": hidden, "num_layers": lm_layers, "num_heads": heads,
                        "ffn_dim": 4 * hidden, "max_positions": 256}},
        "visual": {"name": "timesformer", "source": "tiny",
                   "tiny": {"image_size": 16 * patches_side, "patch_size": 16, "num_frames": 8,
                            "hidden_size": visual_dim, "num_layers": 1, "num_heads": 12,
                            "intermediate_size": 4 * visual_dim}},
        "adapters": {"layers": list(layers), "attention": {"name": attention, "heads": heads},
                     "gate": {"name": "vector", "init": 1.0}},
    })
    torch.manual_seed(0)
    return build_model(cfg).eval()


def parser(doc: str) -> argparse.ArgumentParser:
    """The options every model benchmark shares: --device, --dtype, --threads, --repeats."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: torch's default); 1 is steadier on a busy machine")
    p.add_argument("--repeats", type=int, default=3)
    return p


def parse(p: argparse.ArgumentParser):
    """Parse the command line and apply --threads."""
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args
