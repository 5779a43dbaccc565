"""Run under ``torch.distributed.run --nproc_per_node 2``: full vs stopped-and-resumed toy runs.

Usage: dist_worker.py OUT_DIR. Each rank writes ``OUT_DIR/result-<rank>.json``.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_toys import adapter_state, make_trainer  # noqa: E402

from fcap.train import distributed  # noqa: E402
from fcap.train.preemption import TrainingInterrupted  # noqa: E402


def main(out: Path) -> None:
    info = distributed.setup()
    full = make_trainer(out / "full", info)
    summary = full.fit()
    a = adapter_state(full)
    try:
        make_trainer(out / "resumed", info, stop_after=5).fit()
        stopped = False
    except TrainingInterrupted:
        stopped = True
    again = make_trainer(out / "resumed", info)
    resumed_summary = again.fit()
    b = adapter_state(again)
    result = {"rank": info.rank, "world_size": info.world_size, "stopped": stopped,
              "bitwise_equal": all(a[k].equal(b[k]) for k in a),
              "summary": summary, "resumed_from": resumed_summary["resumed_from"],
              "checksum": float(sum(v.double().sum() for v in a.values()))}
    (out / f"result-{info.rank}.json").write_text(json.dumps(result))
    distributed.teardown(info)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
