"""Helpers for the tests that submit to a real SLURM (``slurm/start_cluster.sh``).

The tests are skipped, with the reason, only where ``sbatch`` is absent; a
cluster that is installed but does not answer fails them.
"""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import submitit
import yaml

from fcap import cli
from fcap.experiment import build_plan
from fcap.launchers import slurm_status

PLUGIN = Path(__file__).resolve().parents[2] / "fixtures" / "plugins" / "slurm_tasks.py"
SMALL = {"cpus_per_task": 1, "time_min": 5}  # fits the 2-core local node twice


@pytest.fixture(scope="session")
def cluster():
    """The local cluster: skip where sbatch is absent, fail where it does not answer."""
    if shutil.which("sbatch") is None:
        pytest.skip("sbatch not found: no SLURM here (start one with: bash slurm/start_cluster.sh)")
    info = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    states = info.stdout.split()
    if info.returncode != 0 or not any(s in ("idle", "mixed", "allocated") for s in states):
        pytest.fail(f"SLURM is installed but not up (sinfo: {info.stdout or info.stderr!r}); "
                    "run: bash slurm/start_cluster.sh")
    return True


def experiment(tmp: Path, name: str, stages: dict, **top) -> Path:
    doc = {"name": name, "output_root": str(tmp / "runs"), "plugins": [str(PLUGIN)],
           "stages": stages, **top}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def fcap_run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue()


def submit(path: Path, *args: str) -> str:
    code, out = fcap_run(path, *args, "--launcher", "slurm")
    assert code == 0, out
    return out


def wait(path: Path, timeout_s: float = 180) -> dict[str, tuple[str, str]]:
    plan = build_plan(path)
    states = slurm_status.wait(plan.runs, poll_s=1, timeout_s=timeout_s)
    busy = {k: v for k, v in states.items() if v[0] in ("pending", "running")
            and "the next fcap-run submits it again" not in v[1]}
    assert not busy, f"still busy after {timeout_s} s: {busy}"
    return states


def status_lines(path: Path) -> dict[str, str]:
    code, out = fcap_run("status", path)
    assert code == 0, out
    return {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}


def job_paths(run_dir: Path, job_id: str, task: int = 0):
    """submitit's files of task ``task`` of a stage's job (script, logs), by submitit's API."""
    return submitit.SlurmJob(run_dir / slurm_status.LOG_DIR, job_id, tasks=(task,)).paths


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "slurm.json").read_text())


def done(run_dir: Path) -> dict:
    return json.loads((run_dir / "DONE.json").read_text())


def wait_for(probe, timeout_s: float = 180):
    """Poll ``probe()`` every 0.2 s until it returns something true; return that."""
    deadline = time.time() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        assert time.time() < deadline, f"timed out after {timeout_s} s waiting for the job"
        time.sleep(0.2)
