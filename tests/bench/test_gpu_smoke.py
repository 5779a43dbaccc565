"""bench/gpu.sh (issue 17): the one-command GPU run, exercised on the CPU at toy sizes.

The GPU figures themselves need a GPU; these tests only show that the command,
its parts and its JSON lines work end to end (``--cpu-smoke``), and that a part
that fails, hangs or finds no time left is reported as such.
"""
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_driver():
    spec = importlib.util.spec_from_file_location("gpu_run", ROOT / "bench" / "gpu_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lines_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.strip().splitlines()]


@pytest.mark.slow
def test_cpu_smoke_runs_every_part_and_ends_with_the_summary(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--cpu-smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = lines_of(done.stdout)  # stdout holds nothing but the JSON lines
    assert [r["part"] for r in lines] == ["env", "attention", "train", "pseudolabel", "generation", "summary"]
    assert all(r["ok"] for r in lines), [r.get("error") for r in lines]
    assert lines_of((out / "results.jsonl").read_text()) == lines
    part = {r["part"]: r["result"] for r in lines[:-1]}

    assert part["env"]["gpu"] is None and part["env"]["deepspeed"][0].isdigit()

    train = part["train"]["by_modality"]
    assert (train["video"]["frames"], train["video"]["batch"]) == (4, 4)
    assert (train["image"]["frames"], train["image"]["batch"]) == (1, 8)
    for r in train.values():
        assert r["samples_per_s"] > 0 and r["tokens_per_s"] > r["samples_per_s"]  # several tokens a caption
        assert r["bad_steps"] == 0 and r["peak_rss_mib"] > 0
        assert "mfu" not in r  # MFU only against a GPU's peak
    # 4 frames go through the encoder for a video, 1 for an image: the count sees it
    assert train["video"]["flops_per_sample_counted"] > train["image"]["flops_per_sample_counted"] > 0

    pl = part["pseudolabel"]
    # one generated 20-s video linked twice: clips [0, 8), [8, 16), [16, 20) each
    assert pl["clips"] == 6 and pl["frame_size"] == 64
    assert pl["decode_clips_per_s"] > 0 and pl["caption_clips_per_s"] > 0 and pl["clips_per_s"] > 0
    assert pl["gpu_days_50M_clips"] is None and pl["paper_v100_days"] == 64

    att = part["attention"]
    assert set(att["speedup_separable_vs_full"]) == {"2", "4"} and att["peak_mem_full_over_separable"] is None
    assert set(part["generation"]["by_batch"]) == {"2", "4"}

    summary = lines[-1]
    assert summary["summary"] is True and summary["smoke"] is True and summary["ok"] is True
    assert set(summary["parts"].values()) == {"ok"}
    assert summary["train"]["video"]["samples_per_s"] == train["video"]["samples_per_s"]
    assert summary["pseudolabel"]["clips_per_s"] == pl["clips_per_s"]
    assert set(summary["generation"]) == {"2", "4"}
    assert summary["targets"] == {"train_mfu_ge_0.40": None, "pseudolabel_clips_per_s_ge_50": None,
                                  "separable_vs_full_t16_ge_5x": None}  # smoke figures judge nothing


def test_parts_left_without_time_are_reported_skipped_and_fail_the_run(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_run.py"), "--cpu-smoke", "--only", "train",
                           "--budget-s", "5", "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = lines_of(done.stdout)
    assert [r["part"] for r in lines] == ["env", "train", "summary"]
    assert all("skipped" in r["error"] and "5-s budget" in r["error"] for r in lines[:2])
    assert lines[-1]["ok"] is False and lines[-1]["parts"]["train"].startswith("skipped")


def test_a_hanging_part_is_killed_with_its_children_at_its_timeout(tmp_path):
    driver = load_driver()
    script = ("import json, subprocess, sys, time\n"
              "child = subprocess.Popen(['sleep', '120'])\n"
              "print(json.dumps({'child': child.pid}), flush=True)\n"
              "time.sleep(120)\n")
    rec = driver.run_part("hang", [sys.executable, "-c", script], 3.0, tmp_path, dict(os.environ))
    assert rec["ok"] is False and rec["error"] == "timed out after 3 s"
    status = Path(f"/proc/{rec['result']['child']}/status")

    def dead() -> bool:  # gone, or a zombie waiting for init to reap it
        try:
            return "\nState:\tZ" in status.read_text()
        except FileNotFoundError:
            return True

    deadline = time.time() + 10  # SIGKILL is delivered asynchronously
    while not dead() and time.time() < deadline:
        time.sleep(0.05)
    assert dead(), "the part's child survived the timeout"


def test_a_failing_part_reports_its_exit_code_and_stderr(tmp_path):
    driver = load_driver()
    rec = driver.run_part("bad", [sys.executable, "-c", "import sys; sys.exit('no CUDA device here')"],
                          30.0, tmp_path, dict(os.environ))
    assert rec["ok"] is False and rec["error"].startswith("exit 1: ") and "no CUDA device here" in rec["error"]
    assert rec["result"] is None


def test_a_part_without_a_json_last_line_is_not_ok(tmp_path):
    driver = load_driver()
    rec = driver.run_part("quiet", [sys.executable, "-c", "print('table only')"], 30.0, tmp_path, dict(os.environ))
    assert rec["ok"] is False and "no JSON object" in rec["error"]
