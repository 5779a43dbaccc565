"""Where training scalars go: TensorBoard, ``metrics.jsonl``, per-rank logs, console.

Rank 0 writes the global scalars (``<run_dir>/tensorboard/`` and
``<run_dir>/metrics.jsonl``, one ``{"step": n, "name": value, ...}`` per line);
every rank appends its local view to ``<run_dir>/ranks/rank-NNNNN.jsonl``. After
a resume from step k, lines and events beyond k are dropped, so each step
appears once.
"""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path

from fcap.train.distributed import DistInfo


def _truncate_jsonl(path: Path, *, after: int) -> None:
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= after:
                kept.append(line)
        except ValueError:  # a line cut by a crash
            continue
    path.write_text("".join(k + "\n" for k in kept))


def _clean(values: dict) -> dict:
    out = {}
    for k, v in values.items():
        v = float(v)
        out[k] = v if math.isfinite(v) else str(v)  # JSON has no NaN/inf
    return out


class Monitor:
    def __init__(self, run_dir: Path, *, info: DistInfo, total_steps: int, start_step: int,
                 logger: logging.Logger) -> None:
        self.info = info
        self.logger = logger
        self.total = total_steps
        self.start_step = start_step
        self.t0 = time.monotonic()
        run_dir = Path(run_dir)
        self.rank_path = run_dir / "ranks" / f"rank-{info.rank:05d}.jsonl"
        self.rank_path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_jsonl(self.rank_path, after=start_step)
        self.writer = None
        self.bar = None
        self.path = run_dir / "metrics.jsonl"
        if info.is_main:
            from torch.utils.tensorboard import SummaryWriter

            _truncate_jsonl(self.path, after=start_step)
            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step + 1)
            if sys.stderr.isatty():
                from tqdm import tqdm

                self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Global scalars (call on rank 0; other ranks ignore)."""
        if not self.info.is_main:
            return
        values = _clean(values)
        for k, v in values.items():
            if isinstance(v, float):
                self.writer.add_scalar(k, v, step)
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.bar is None:
            done = step - self.start_step
            elapsed = time.monotonic() - self.t0
            eta = elapsed / max(done, 1) * (self.total - step)
            short = {k: v for k, v in values.items() if k.startswith("train/") and "/" not in k[6:]}
            text = " ".join(f"{k[6:]}={v:.4g}" if isinstance(v, float) else f"{k[6:]}={v}"
                            for k, v in short.items())
            self.logger.info("step %d/%d %s eta %s", step, self.total, text, _hms(eta))

    def rank_scalars(self, step: int, values: dict[str, float]) -> None:
        with open(self.rank_path, "a") as f:
            f.write(json.dumps({"step": step, "rank": self.info.rank, **_clean(values)}) + "\n")

    def advance(self, step: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4g}")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
        if self.bar is not None:
            self.bar.close()


def _hms(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
