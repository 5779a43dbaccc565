"""GPU figures in one command (issue 17): the driver behind bench/gpu.sh.

Runs, each in its own process with its own timeout, inside one overall budget:

1. ``install`` (with ``--wheels DIR``): the packages of bench/gpu_wheels.txt,
   ``pip install --no-index`` from DIR, then fcap itself, editable, from this tree.
2. ``env``: versions of Python, torch, CUDA, transformers, deepspeed, decord, av; the GPU.
3. ``attention``: bench/attention.py, paper dims, bf16, t = 8, 16, 32, 96, batch 4.
4. ``train``: bench/train.py at the paper's shape (OPT-1.3B dims + TimeSformer-B,
   adapters at 12..22), bf16, ZeRO-2, 1 GPU, video then image batches.
5. ``pseudolabel``: bench/pseudolabel.py, random BLIP-Large at 320 px, batch 64,
   16 decode workers, generated 720p H.264 videos of 3 minutes.
6. ``generation``: bench/generation.py at paper dims, batch 16 and 64.
7. ``attention_b32``: as 3 at batch 32 (the GPU is far from busy at batch 4).

Each part prints one JSON line (``{"part": ..., "ok": ..., "result": <the
script's last JSON line>}``) on stdout as it ends; the last line is the
summary (headline figures and the issue's targets). Logs and the same lines
(results.jsonl) go to ``--out``. ``--cpu-smoke`` runs every part on the CPU at
toy sizes (same scripts, same code paths) so the command is known to work
before GPU time is spent; its figures mean nothing.

    python bench/gpu_run.py [--wheels DIR] [--out DIR] [--cpu-smoke] [--budget-s 460]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The packages installed from --wheels; the rest of bench/gpu_wheels.txt are their
# dependencies (pip takes them from the folder only when the machine lacks them).
TOP_LEVEL = ("deepspeed", "decord", "av")
ENV_PROBE = """
import json, platform, sys
import torch
out = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
       "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
       "gpu_count": torch.cuda.device_count(), "cpus": __import__("os").cpu_count()}
import fcap.models, transformers
out["transformers"] = transformers.__version__
for name in ("deepspeed", "decord", "av", "fcap"):
    try:
        out[name] = __import__(name).__version__
    except Exception as err:
        out[name] = f"missing: {type(err).__name__}: {err}"
print(json.dumps(out))
"""


def plan(smoke: bool, cache: Path) -> list[tuple[str, list[str], int]]:
    """(part, argv after python, timeout s) in running order: most wanted figures first."""
    if smoke:
        return [
            ("attention", ["bench/attention.py", "--device", "cpu", "--in-process", "--dim", "64",
                           "--visual-dim", "32", "--heads", "4", "--patches", "16", "--tokens", "8",
                           "--frames", "2,4", "--batch", "2", "--repeats", "1", "--warmup", "0",
                           "--threads", "1"], 60),
            ("train", ["bench/train.py", "--device", "cpu", "--shape", "smoke", "--precision", "fp32",
                       "--modality", "video,image", "--batch", "4", "--image-batch", "8", "--steps", "4",
                       "--log-every", "2", "--skip-zero", "--threads", "1"], 90),
            ("pseudolabel", ["bench/pseudolabel.py", "--device", "cpu", "--shape", "tiny", "--videos",
                             "generated", "--video-size", "160x96", "--video-seconds", "20", "--distinct", "1",
                             "--copies", "2", "--frame-size", "64", "--batch-size", "4", "--workers", "1",
                             "--repeats", "1", "--cost-clips", "1", "--max-new-tokens", "4",
                             "--video-cache", str(cache / "bench-videos")], 90),
            ("generation", ["bench/generation.py", "--device", "cpu", "--shape", "smoke", "--batch", "2,4",
                            "--tokens", "4", "--frames", "2", "--repeats", "1", "--threads", "1"], 60),
        ]
    return [
        ("attention", ["bench/attention.py", "--device", "cuda", "--dtype", "bf16", "--frames", "8,16,32,96",
                       "--batch", "4", "--repeats", "5", "--warmup", "2"], 40),
        ("train", ["bench/train.py", "--device", "cuda", "--shape", "paper", "--precision", "bf16",
                   "--modality", "video,image", "--batch", "64", "--image-batch", "256", "--steps", "25",
                   "--log-every", "5", "--skip-zero"], 150),
        ("pseudolabel", ["bench/pseudolabel.py", "--device", "cuda", "--shape", "large", "--videos", "generated",
                         "--video-size", "1280x720", "--video-seconds", "180", "--distinct", "2", "--copies", "8",
                         "--frame-size", "320", "--batch-size", "64", "--workers", "16", "--repeats", "1",
                         "--cost-clips", "2", "--video-cache", str(cache / "bench-videos")], 150),
        ("generation", ["bench/generation.py", "--device", "cuda", "--dtype", "bf16", "--shape", "paper",
                        "--batch", "16,64", "--repeats", "3"], 80),
        ("attention_b32", ["bench/attention.py", "--device", "cuda", "--dtype", "bf16", "--frames", "8,16,32,96",
                           "--batch", "32", "--repeats", "5", "--warmup", "2"], 30),
    ]


def run_part(name: str, argv: list[str], timeout: float, out: Path, env: dict) -> dict:
    """Run one part in its own process group; kill the whole group at the timeout."""
    t0 = time.time()
    with open(out / f"{name}.out", "w") as so, open(out / f"{name}.err", "w") as se:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=so, stderr=se, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # decode workers and video makers too
            code, timed_out = proc.wait(), True
    record = {"part": name, "ok": code == 0 and not timed_out, "wall_s": round(time.time() - t0, 1),
              "timeout_s": round(timeout),
              "command": "python -c <probe>" if argv[1] == "-c" else " ".join(argv[1:])}
    if timed_out:
        record["error"] = f"timed out after {timeout:.0f} s"
    elif code:
        record["error"] = f"exit {code}: " + _tail(out / f"{name}.err")
    lines = (out / f"{name}.out").read_text(errors="replace").strip().splitlines()
    result = None
    if lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    if record["ok"] and not isinstance(result, dict):
        record.update(ok=False, error="no JSON object on the last line of stdout")
    record["result"] = result if isinstance(result, dict) else None
    return record


def _tail(path: Path, n: int = 1500) -> str:
    text = path.read_text(errors="replace") if path.is_file() else ""
    return text[-n:]


def install(wheels: Path, python: str, out: Path, timeout: float) -> dict:
    """pip install --no-index the TOP_LEVEL packages (pinned in gpu_wheels.txt), then fcap (-e .).

    fcap's editable install builds with the machine's own setuptools (torch and tensorboard
    require it; an isolated build would need setuptools' own dependencies as wheels too).
    The benchmarks put this tree first on sys.path, so they run even if that step fails:
    ``ok`` is about the packages.
    """
    pins = {}
    for line in (ROOT / "bench" / "gpu_wheels.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            pins[line.split("==")[0].lower()] = line
    pip = [python, "-m", "pip", "install", "--no-index", "--find-links", str(wheels),
           "--disable-pip-version-check", "--no-input"]
    steps = [("packages", pip + [pins[p] for p in TOP_LEVEL]),
             ("fcap", pip + ["--no-deps", "--no-build-isolation", "-e", str(ROOT)])]
    t0 = time.time()
    record = {"part": "install", "ok": True, "wheels": str(wheels)}
    with open(out / "install.log", "w") as log:
        for what, argv in steps:
            left = timeout - (time.time() - t0)
            try:
                done = subprocess.run(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=max(left, 1))
                ok = done.returncode == 0
            except subprocess.TimeoutExpired:
                ok = False
            record[what] = "installed" if ok else "FAILED (see install.log)"
            if not ok and what == "packages":
                record["ok"] = False
                record["error"] = "pip install of " + " ".join(pins[p] for p in TOP_LEVEL) + " failed: " + \
                    _tail(out / "install.log", 1200)
    record["wall_s"] = round(time.time() - t0, 1)
    return record


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def summary(records: dict[str, dict], smoke: bool, wall_s: float, budget_s: float) -> dict:
    r = {k: v.get("result") or {} for k, v in records.items()}
    video, image = get(r, "train", "by_modality", "video"), get(r, "train", "by_modality", "image")
    pl = r.get("pseudolabel", {})
    sep16 = get(r, "attention", "speedup_separable_vs_full", "16")
    mfu = get(video, "mfu")
    targets = {
        "train_mfu_ge_0.40": None if mfu is None else mfu >= 0.40,
        "pseudolabel_clips_per_s_ge_50": None if smoke or not pl.get("clips_per_s") else pl["clips_per_s"] >= 50,
        "separable_vs_full_t16_ge_5x": None if sep16 is None or smoke else sep16 >= 5,
    }
    pick = lambda d, *ks: {k: get(d, k) for k in ks} if d else None  # noqa: E731
    return {
        "summary": True, "smoke": smoke, "ok": all(v.get("ok") for v in records.values()),
        "parts": {k: ("ok" if v.get("ok") else v.get("error", "failed")[:200]) for k, v in records.items()},
        "machine": r.get("env") or None, "wall_s": round(wall_s, 1), "budget_s": budget_s,
        "train": {"video": pick(video, "batch", "samples_per_s", "tokens_per_s", "tflops", "mfu", "mfu_estimate",
                                "peak_mem_gib", "peak_rss_mib", "flops_per_sample_counted"),
                  "image": pick(image, "batch", "samples_per_s", "tokens_per_s", "tflops", "mfu", "mfu_estimate",
                                "peak_mem_gib", "peak_rss_mib", "flops_per_sample_counted")},
        "pseudolabel": pick(pl, "clips_per_s", "decode_clips_per_s", "caption_clips_per_s",
                            "decode_clips_per_s_per_worker", "decode_workers_needed", "gpu_days_50M_clips",
                            "gpu_days_50M_clips_caption_only", "paper_v100_days", "centre_vs_full_decode"),
        "attention": {b: pick(r.get(k), "speedup_separable_vs_full", "speedup_separable_vs_perceiver",
                              "separable_t96_over_t8")
                      for b, k in (("batch4", "attention"), ("batch32", "attention_b32")) if r.get(k)},
        "generation": {b: pick(v, "reuse_speedup", "tokens20_over_forward", "captions_per_s")
                       for b, v in (get(r, "generation", "by_batch") or {}).items()},
        "targets": targets,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wheels", default=None, help="folder of wheels to pip install --no-index first")
    p.add_argument("--out", default=None, help="logs and results.jsonl (default: bench/out/gpu-<time>)")
    p.add_argument("--cpu-smoke", action="store_true", help="every part on the CPU at toy sizes")
    p.add_argument("--budget-s", type=float, default=None,
                   help="whole run, install included (default: 460 on GPU, 170 smoke)")
    p.add_argument("--only", default=None, help="comma-separated parts to run (default: all)")
    args = p.parse_args()
    t_start = time.time()
    budget = args.budget_s or (170.0 if args.cpu_smoke else 460.0)
    deadline = t_start + budget
    out = Path(args.out or ROOT / "bench" / "out" / time.strftime("gpu-%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(os.environ.get("FCAP_CACHE") or Path(tempfile.gettempdir()) / "fcap-gpu-bench-cache")
    env = {**os.environ, "FCAP_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if args.cpu_smoke:
        env["DS_ACCELERATOR"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
    records: dict[str, dict] = {}

    def emit(rec: dict) -> None:
        records[rec["part"]] = rec
        line = json.dumps(rec)
        print(line, flush=True)
        with open(out / "results.jsonl", "a") as f:
            f.write(line + "\n")

    def say(msg: str) -> None:
        print(f"[gpu.sh {time.time() - t_start:5.0f} s] {msg}", file=sys.stderr, flush=True)

    if args.wheels:
        say(f"installing from {args.wheels} (log: {out / 'install.log'})")
        emit(install(Path(args.wheels).resolve(), sys.executable, out, timeout=min(60.0, deadline - time.time())))
    parts = [("env", ["-c", ENV_PROBE], 30)] + plan(args.cpu_smoke, cache)
    only = set(args.only.split(",")) | {"env"} if args.only else None
    for name, argv, cap in parts:
        if only is not None and name not in only:
            continue
        left = deadline - time.time()
        if left < 10:
            emit({"part": name, "ok": False, "error": f"skipped: {left:.0f} s of the {budget:.0f}-s budget left"})
            continue
        timeout = min(cap, left)
        say(f"{name}: running (timeout {timeout:.0f} s; log {out / (name + '.err')})")
        emit(run_part(name, [sys.executable, *argv], timeout, out, env))
    emit({"part": "summary", **summary({k: v for k, v in records.items()}, args.cpu_smoke,
                                        time.time() - t_start, budget)})
    sys.exit(0 if all(r.get("ok") for r in records.values()) else 1)


if __name__ == "__main__":
    main()
