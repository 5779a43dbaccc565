import json
import os
import subprocess
import sys
from pathlib import Path

from fcap.train.distributed import free_port

WORKER = Path(__file__).with_name("dist_worker.py")


def test_two_ranks_train_log_and_resume_bitwise(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--log-dir", os.devnull, "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(WORKER), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads((tmp_path / f"result-{r}.json").read_text()) for r in (0, 1)]
    for rank, res in enumerate(results):
        assert res["rank"] == rank and res["world_size"] == 2
        assert res["stopped"] and res["resumed_from"] == 5
        assert res["bitwise_equal"]
        # both ranks logged their own view of every log step
        rows = (tmp_path / "full" / "ranks" / f"rank-{rank:05d}.jsonl").read_text().splitlines()
        assert [json.loads(r)["step"] for r in rows] == [2, 4, 6, 8, 10, 12]
    assert results[0]["checksum"] == results[1]["checksum"]  # ranks hold the same adapters
    assert results[0]["summary"]["samples"] == 2 * 12 * 4  # both ranks' batches counted
    metrics = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 6
