"""Which software and processor ran a stage: the versions of the libraries that decide its
numbers, the CPU model and the GPUs.

The same commit and seeds give the same numbers only with the same libraries on the same
kind of processor: a newer PyAV encodes the shapes world's videos a little differently, a
newer transformers changes an attention kernel, another CPU sums in another order.
DONE.json records it when a stage ends (fcap/experiment/markers.py); report.md lists the
environments its runs were made in, and says so when there were several, as it does for
the code (fcap/experiment/code_version.py).
"""
from __future__ import annotations

import functools
import hashlib
import json
import platform
import sys
from importlib import metadata
from typing import Optional

# the distributions whose version can change a stage's numbers (fcap itself: code_version)
PACKAGES = ("torch", "transformers", "tokenizers", "deepspeed", "numpy", "av", "decord",
            "pillow", "pycocoevalcap")


def current() -> dict:
    """``{"python", "packages": {name: version or None}, "cpu", "gpus", "torch_threads"}`` of
    this process. The torch thread count (CPU) changes how sums are split, hence the last
    digits: the local launcher gives a stage one thread side by side, all cores one at a time."""
    env = dict(_fixed())
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
    return env


@functools.lru_cache(maxsize=None)
def _fixed() -> dict:
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {"python": platform.python_version(), "packages": packages, "cpu": cpu_model(),
            "gpus": _gpus()}


def cpu_model() -> str:
    """The processor: its model name, family and model numbers (``/proc/cpuinfo`` on Linux; a
    VM may name only "AMD EPYC", which spans generations) and the widest vector instructions
    torch's CPU kernels use here (AVX2, AVX512: they sum in other orders); else
    ``platform.processor()``."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if not line.strip():
                    break  # the first processor is enough
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    details = [f"family {fields['cpu family']} model {fields['model']}"
               if "cpu family" in fields and "model" in fields else ""]
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch.backends, "cpu"):
        details.append(torch.backends.cpu.get_cpu_capability())
    details = [d for d in details if d]
    return f"{name} ({', '.join(details)})" if details else name


def _gpus() -> list[str]:
    torch = sys.modules.get("torch")  # a stage has imported it; never import it only for this
    if torch is None or not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def describe(env: Optional[dict]) -> str:
    """One line: ``Python 3.11.2, av 18.1.0, ..., transformers 5.25.0; CPU AMD EPYC (...); no GPU``."""
    if not env:
        return "-"
    versions = ", ".join(f"{name} {version}" for name, version
                         in sorted(env.get("packages", {}).items()) if version)
    gpus = env.get("gpus") or []
    gpu = f"{len(gpus)} x {gpus[0]}" if gpus else "no GPU"
    threads = f"; {env['torch_threads']} torch thread(s)" if "torch_threads" in env else ""
    return (f"Python {env.get('python', '?')}, {versions}; CPU {env.get('cpu', '?')}; {gpu}"
            + threads)


def short(env: Optional[dict]) -> str:
    """An 8-character id of an environment (report.md's env column), ``-`` when none was
    recorded (a run of older fcap)."""
    if not env:
        return "-"
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:8]
