"""The shapes benchmark's tiny models (issue 13): build time and quality, and how tiny captions end.

    python bench/tiny_models.py build [--cache DIR]
    python bench/tiny_models.py captions [--source tiny|tiny-pretrained] [--steps 200]

``build``: builds the three pretrained tiny models (``source: tiny-pretrained``)
in a fresh fcap cache (a temporary one, removed after, unless ``--cache``) as
``python -m fcap.models.pretrain_tiny`` does (``build_all``: one single-threaded
build process per core, the longest build first), and reports the wall time
and each model's build seconds and ``quality.json``. ``--workers 1`` builds
them one after the other in this process instead (each one's wall and CPU
seconds): run both, back to back, for the ratio.

``captions``: trains the adapters of a tiny FrozenCaptioner on the default
shapes world's MSR-VTT train clips (``caption_pretrain``, lr 5e-3, batch 16,
as the learning sanity check in tests/fcap/tasks), then greedy-decodes the
val + test clips with ``max_new_tokens`` 12 (the tiny profile's) and with the
budget sized from the LM's tokenizer (longest reference the world can write, in
tokens, + EOS). For each budget: the fraction of captions that ended with EOS,
the fraction whose last word is cut (not a word of any world caption), and the
``attributes`` metric.

The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build(args, cache: str) -> dict:
    os.environ["FCAP_CACHE"] = args.cache or cache
    from fcap.models.pretrain_tiny import build_all, kinds, pretrained_dir, read_quality

    out = {"cache": os.environ["FCAP_CACHE"], "models": {}, "workers": args.workers}
    start = time.perf_counter()
    if args.workers == 1:
        for kind, dims in kinds().items():
            t, c = time.perf_counter(), time.process_time()
            folder = pretrained_dir(dims)
            out["models"][kind] = {"wall_s": round(time.perf_counter() - t, 1),
                                   "cpu_s": round(time.process_time() - c, 1),
                                   "quality": read_quality(folder)}
            print(f"{kind:12s} {out['models'][kind]['wall_s']:6.1f} s wall "
                  f"{out['models'][kind]['cpu_s']:6.1f} s cpu  {read_quality(folder)}", flush=True)
    else:
        for kind, quality in build_all(workers=args.workers).items():
            out["models"][kind] = {"build_s": quality.get("build_seconds"), "quality": quality}
            print(f"{kind:12s} {quality.get('build_seconds')} s build  {quality}", flush=True)
    out["total_wall_s"] = round(time.perf_counter() - start, 1)
    out["load_average"] = os.getloadavg()
    print(f"total {out['total_wall_s']} s (load average {out['load_average']})")
    return out


def _run_stage(root: Path, name: str, task: str, body: dict, *, init_from=None):
    from fcap.components import load_builtins
    from fcap.config import from_dict
    from fcap.context import StageContext
    from registry import TASKS

    load_builtins()
    entry = TASKS.get(task)
    cfg = from_dict(entry.config, body, source="bench", key=f"stages.{name}")
    ctx = StageContext(experiment="bench", variant="default", stage=name, run_dir=root / name,
                       config_hash=f"bench-{name}", init_from=init_from, seed=0,
                       logger=logging.getLogger(f"fcap.bench.{name}"), extra={})
    return entry.obj(cfg, ctx)


def captions(args, scratch: str) -> dict:
    import torch

    from fcap.config import from_dict
    from fcap.config.schema import build_component
    from fcap.data.shapes.render import video_captions
    from fcap.eval.attributes import accuracy, truth_from_references
    from fcap.models import DecodingConfig, ModelConfig, build_model
    from fcap.tasks.datasets import DatasetsConfig, data_env, loader_for
    from fcap.train import distributed
    from registry import DATA_SOURCES

    torch.set_num_threads(1)
    os.environ.setdefault("FCAP_CACHE", os.path.join(scratch, "cache"))  # keep yours if set
    root = Path(scratch) / "runs"
    model_block = {"lm": {"name": "opt", "source": args.source},
                   "visual": {"name": "timesformer", "source": args.source},
                   "adapters": {"layers": [2, 3], "attention": {"heads": 4}}}
    datasets = {"num_workers": 0, "shapes_world": {}, "num_frames": 4}
    t = time.perf_counter()
    _run_stage(root, "pretrain", "caption_pretrain", {
        "model": model_block, "datasets": datasets,
        "data": {"name": "msrvtt", "root": "msrvtt", "split": "train"},
        "optimizer": {"name": "adamw", "lr": 5e-3},
        "train": {"steps": args.steps, "batch_size": 16, "log_every": 50, "save_every": 0,
                  "max_text_length": 32}})
    train_s = time.perf_counter() - t
    model = build_model(from_dict(ModelConfig, model_block))
    model.load_adapters(root / "pretrain" / "adapters")
    model.eval()
    tok = model.lm.tokenizer
    refs_all = sorted(video_captions())
    longest = max(len(tok(r, add_special_tokens=False)["input_ids"]) for r in refs_all)
    words = {w for r in refs_all for w in r.split()}
    cfg = from_dict(DatasetsConfig, datasets)
    one = distributed.DistInfo(rank=0, local_rank=0, world_size=1, backend="gloo", owned=False)
    env = data_env(cfg, seed=0, info=one, logger=logging.getLogger())
    out = {"source": args.source, "train_steps": args.steps, "train_s": round(train_s, 1),
           "longest_reference_tokens": longest, "budgets": {}}
    for budget in (12, longest + 1):
        preds, refs, ended = {}, {}, 0
        for split in ("val", "test"):
            source = build_component(DATA_SOURCES, {"name": "msrvtt", "root": "msrvtt",
                                                    "split": split})
            loader = loader_for(source,
                                datasets=cfg, env=env, spec=model.image_spec,
                                encoder=model.visual_identity(), train=False,
                                batch_size=20)
            for batch in loader:
                with torch.no_grad():
                    ids = model.generate_ids(pixel_values=batch["pixel_values"],
                                             frame_mask=batch.get("frame_mask"),
                                             decoding=DecodingConfig(max_new_tokens=budget))
                ended += int((ids == model.lm.eos_token_id).any(dim=1).sum())
                for vid, text, r in zip(batch["ids"], model.decode(ids), batch["references"]):
                    preds[f"{split}/{vid}"], refs[f"{split}/{vid}"] = text, list(r)
        cut = sum(1 for p in preds.values() if p and p.split()[-1] not in words)
        out["budgets"][budget] = {
            "captions": len(preds), "ended_with_eos": round(ended / len(preds), 3),
            "last_word_cut": round(cut / len(preds), 3),
            "attributes": {k: round(v, 3) for k, v in
                           accuracy(preds, truth_from_references(refs)).items()},
            "example": next(iter(preds.values()))}
        print(f"max_new_tokens {budget:3d}: {out['budgets'][budget]}", flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    b = sub.add_parser("build")
    b.add_argument("--cache", default=None, help="fcap cache to build in (default: a fresh one)")
    b.add_argument("--workers", type=int, default=None,
                   help="build processes (default: one per core); 1: one after the other here")
    c = sub.add_parser("captions")
    c.add_argument("--source", default="tiny", choices=("tiny", "tiny-pretrained"))
    c.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="fcap-bench-tiny-") as scratch:
        result = build(args, scratch) if args.what == "build" else captions(args, scratch)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
