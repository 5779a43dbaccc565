"""Adapter weights on disk: adapter tensors only, plus a manifest of the frozen base.

``<dir>/adapters.safetensors`` holds ``layers.<i>.<param>`` for each adapted LM
layer ``i``; ``<dir>/manifest.json`` records the LM and visual encoder (family,
source, config and weights hashes) and the adapters' config. Loading against a
different base model or adapter layout fails naming both sides. (Training
checkpoints, optimizer state included, are fcap/train/checkpoint.py.)

Works on the parts (``{layer: Adapter}`` and a manifest), not on the captioner:
FrozenCaptioner.save_adapters / load_adapters call in here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from torch import nn

FORMAT = "fcap-adapters/1"
WEIGHTS = "adapters.safetensors"
MANIFEST = "manifest.json"


def adapter_state(adapters: Mapping[int, nn.Module]) -> dict:
    return {f"layers.{i}.{k}": v for i, a in adapters.items() for k, v in a.state_dict().items()}


def build_manifest(*, lm: Mapping[str, str], visual: Mapping[str, str], adapters: Mapping[str, Any]) -> dict:
    """lm / visual: the frozen models' identities; adapters: the ``model.adapters`` config as a dict."""
    return {"format": FORMAT, "lm": dict(lm), "visual": dict(visual), "adapters": dict(adapters)}


def save_adapters(directory: str | Path, adapters: Mapping[int, nn.Module], manifest: dict) -> Path:
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in adapter_state(adapters).items()}
    save_file(state, str(out / WEIGHTS), metadata={"format": FORMAT})
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return out


def _describe(ident: dict) -> str:
    return (f"{ident.get('family')} '{ident.get('source')}' (config {str(ident.get('config_hash'))[:12]}, "
            f"weights {str(ident.get('weights_hash'))[:12]})")


def load_adapters(directory: str | Path, adapters: Mapping[int, nn.Module], manifest: dict) -> None:
    """Load into ``adapters``; ``manifest``: this model's (refuses another base or layout)."""
    from safetensors.torch import load_file

    src = Path(directory)
    path = src / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{src}: no {MANIFEST}; not an fcap adapter checkpoint")
    saved = json.loads(path.read_text())
    if saved.get("format") != FORMAT:
        raise ValueError(f"{path}: format {saved.get('format')!r}, expected {FORMAT!r}")
    for role in ("lm", "visual"):
        a, b = saved.get(role, {}), manifest[role]
        if (a.get("config_hash"), a.get("weights_hash")) != (b["config_hash"], b["weights_hash"]):
            raise ValueError(f"{path}: adapters were trained on {role} {_describe(a)} but this "
                             f"model's {role} is {_describe(b)}; load them into the same base model")
    if saved.get("adapters") != manifest["adapters"]:
        raise ValueError(f"{path}: adapters config {saved.get('adapters')} differs from this "
                         f"model's model.adapters {manifest['adapters']}")
    state = load_file(str(src / WEIGHTS))
    expected = adapter_state(adapters)
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"{src / WEIGHTS}: missing tensors {missing[:5]}, unexpected {extra[:5]}")
    for i, adapter in adapters.items():
        prefix = f"layers.{i}."
        adapter.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
