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


# OPT-1.3B (the paper's LM): the dims of facebook/opt-1.3b's config.json.
OPT_1_3B = {"num_layers": 24, "hidden_size": 2048, "num_heads": 32, "ffn_dim": 8192,
            "vocab_size": 50272, "max_positions": 2048}
# The same code path at toy dims (bench/gpu.sh --cpu-smoke); OPT's real vocab is kept.
SMOKE_LM = {"num_layers": 4, "hidden_size": 64, "num_heads": 4, "ffn_dim": 256,
            "vocab_size": 50272, "max_positions": 128}


def random_opt_dir(dims: dict) -> Path:
    """A random ``OPTForCausalLM`` with exactly ``dims`` (vocab included), saved once; returns the folder.

    fcap's ``source: tiny`` OPT gets its vocabulary from a BPE trained on a small
    corpus (a few hundred tokens), so its LM head is far smaller than OPT's
    2048 x 50272. This one keeps OPT's vocab size (the head and the loss cost what
    they cost in the paper) and borrows the tiny tokenizer, whose ids all fall in it.
    Saved in bf16 under ``<fcap cache>/models/bench-opt-<hash>`` ($FCAP_CACHE);
    fcap loads it in fp32 like any checkpoint. Built on the GPU when there is one
    (seconds instead of a minute of CPU init for 1.3B parameters).
    """
    import hashlib
    import shutil
    import tempfile

    from fcap.cache import cache_dir

    digest = hashlib.sha256(json.dumps({"v": 1, **dims}, sort_keys=True).encode()).hexdigest()[:16]
    out = cache_dir("models", f"bench-opt-{digest}")
    if (out / "config.json").is_file():
        return out
    from transformers import OPTConfig, OPTForCausalLM

    from fcap.models.tiny import build_tokenizer

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".bench-opt-"))
    try:
        config = OPTConfig(vocab_size=dims["vocab_size"], hidden_size=dims["hidden_size"],
                           num_hidden_layers=dims["num_layers"], num_attention_heads=dims["num_heads"],
                           ffn_dim=dims["ffn_dim"], max_position_embeddings=dims["max_positions"],
                           word_embed_proj_dim=dims["hidden_size"], do_layer_norm_before=True,
                           pad_token_id=1, bos_token_id=2, eos_token_id=2, dropout=0.0,
                           attention_dropout=0.0)
        torch.manual_seed(0)
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = OPTForCausalLM(config)
        model.to(torch.bfloat16).save_pretrained(tmp)
        del model
        build_tokenizer(512).save_pretrained(tmp)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# Shapes of ``bench_model``: the LM (``tiny`` dims built by fcap, or an OPT from
# random_opt_dir), adapter layers and adapter heads. paper: Sec. 5, OPT-1.3B with
# separable adapters in front of layers 12..22, 16 heads.
MODEL_SHAPES = {
    "opt125m": {"lm_tiny": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "ffn_dim": 3072,
                            "max_positions": 256}, "layers": (6, 8, 10), "heads": 12},
    "paper": {"lm_dims": OPT_1_3B, "layers": (12, 14, 16, 18, 20, 22), "heads": 16},
    "smoke": {"lm_dims": SMOKE_LM, "layers": (2, 3), "heads": 4, "visual_dim": 32, "patches_side": 2,
              "visual_heads": 4},
}


def lm_block(shape: str) -> dict:
    """The ``model.lm`` config block of a MODEL_SHAPES entry."""
    spec = MODEL_SHAPES[shape]
    if "lm_dims" in spec:
        return {"name": "opt", "source": str(random_opt_dir(spec["lm_dims"]))}
    return {"name": "opt", "source": "tiny", "tiny": dict(spec["lm_tiny"])}


def visual_shape(shape: str) -> tuple[int, int]:
    """(visual width, patches per frame) of a MODEL_SHAPES entry: TimeSformer-B's 768 and 196."""
    spec = MODEL_SHAPES[shape]
    return spec.get("visual_dim", 768), spec.get("patches_side", 14) ** 2


def bench_model(*, attention: str = "separable", shape: str = "opt125m"):
    """A random FrozenCaptioner of ``shape`` (MODEL_SHAPES; default OPT-125m's LM shape).

    Weights are random (no downloads here); timings only depend on shapes. The
    visual encoder is a 1-layer TimeSformer with the paper's visual width and 196
    patches (``smoke``: 32 and 4); benchmarks feed precomputed features, as the
    feature cache does.
    """
    import fcap.models  # noqa: F401
    from fcap.config.schema import from_dict
    from fcap.models import ModelConfig, build_model

    spec = MODEL_SHAPES[shape]
    layers, heads = spec["layers"], spec["heads"]
    visual_dim, patches_side = spec.get("visual_dim", 768), spec.get("patches_side", 14)
    cfg = from_dict(ModelConfig, {
        "lm": lm_block(shape),
        "visual": {"name": "timesformer", "source": "tiny",
                   "tiny": {"image_size": 16 * patches_side, "patch_size": 16, "num_frames": 8,
                            "hidden_size": visual_dim, "num_layers": 1, "num_heads": spec.get("visual_heads", 12),
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
