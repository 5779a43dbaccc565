"""State of stages submitted to SLURM: ``slurm.json`` in the run dir + ``sacct`` (``squeue`` for a job it does not list yet) + markers.

``slurm.json`` (written at submission) holds the job id, the array size, the
config hash and the jobs it waits for. A stage is *done* when its DONE.json
carries the current config hash; otherwise its job's SLURM state decides:
pending, running (with the nodes it runs on, as SLURM writes them: ``n[1-2]``),
or failed (with FAILED.json's error, or the SLURM state, or "cancelled:
dependency ... failed"), always with job id and log paths.
"""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from fcap.experiment import markers
from fcap.io import write_json_atomic

RECORD = "slurm.json"
LOG_DIR = "slurm"  # submitit's folder inside the run dir: sbatch scripts, pickles, logs
ARRAY_DIR = "slurm/array"  # per-element completion markers of an array stage
PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED", "RESIZING",
           "REVOKED", "STAGE_OUT", "SIGNALING"}
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING"}
FAILED = {"FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
          "DEADLINE", "PREEMPTED"}


@dataclass(frozen=True)
class JobRow:
    job_id: str  # "123", "123_4" (array element) or "123_[0-2]" (pending elements)
    state: str  # first word of sacct's State ("CANCELLED by 0" -> "CANCELLED")
    exit_code: str
    reason: str
    nodes: str = ""  # sacct's NodeList: "n[1-2]" while running; "None assigned" while pending


def read_record(run_dir: Path) -> dict | None:
    try:
        return json.loads((Path(run_dir) / RECORD).read_text())
    except (OSError, ValueError):
        return None


def write_record(run_dir: Path, record: dict) -> None:
    write_json_atomic(Path(run_dir) / RECORD, record)


def read_elements(run_dir: Path, count: int, config_hash: str) -> list[dict]:
    """The completion markers of an array's elements that carry ``config_hash``."""
    out = []
    for i in range(count):
        try:
            data = json.loads((run_dir / ARRAY_DIR / f"{i}.json").read_text())
        except (OSError, ValueError):
            continue
        if data.get("config_hash") == config_hash:
            out.append(data)
    return out


def sacct(job_ids: list[str]) -> dict[str, list[JobRow]]:
    """Rows per base job id (array elements grouped); {} when sacct is unavailable."""
    ids = sorted({str(j).split("_")[0] for j in job_ids if j})
    if not ids:
        return {}
    try:
        out = subprocess.run(["sacct", "-n", "-P", "-X", "-j", ",".join(ids),
                              "--format=JobID,State,ExitCode,Reason,NodeList"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    table: dict[str, list[JobRow]] = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) < 5:
            continue
        row = JobRow(parts[0], parts[1].split()[0] if parts[1] else "UNKNOWN", parts[2], parts[3],
                     parts[4])
        table.setdefault(row.job_id.split("_")[0], []).append(row)
    for row in _squeue([i for i in ids if i not in table]):
        table.setdefault(row.job_id.split("_")[0], []).append(row)
    return table


def _squeue(job_ids: list[str]) -> list[JobRow]:
    """Rows of jobs slurmctld has but slurmdbd has not recorded yet: sacct lags seconds behind
    a submission, and a job it does not list yet was taken for gone (and submitted again)."""
    if not job_ids:
        return []
    try:
        out = subprocess.run(["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i|%T|%r|%N"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [line.split("|") for line in out.splitlines()]
    return [JobRow(p[0], p[1] or "UNKNOWN", "0:0", p[2], p[3]) for p in rows if len(p) == 4]


def slurm_log(run_dir: Path, job_id: str, *, array: int | None = None) -> Path:
    """Where submitit writes the stderr of task 0 (of element 0, for an array)."""
    import submitit

    job_id = f"{job_id}_0" if array else str(job_id)
    return submitit.SlurmJob(Path(run_dir) / LOG_DIR, job_id).paths.stderr


def job_state(rows: list[JobRow]) -> str:
    """pending / running / completed / failed / unknown for a job's rows (all elements)."""
    states = {r.state for r in rows}
    if not states:
        return "unknown"
    if states & FAILED:
        return "failed"
    if states & RUNNING:
        return "running"
    if states & PENDING:
        return "pending"
    if states == {"COMPLETED"}:
        return "completed"
    return "unknown"


def is_active(record: dict | None, table: dict[str, list[JobRow]]) -> bool:
    return bool(record) and job_state(table.get(record["job_id"], [])) in ("pending", "running")


def describe(run, table: dict[str, list[JobRow]]) -> tuple[str, str] | None:
    """(state, detail) of a run submitted to SLURM, or None if it never was."""
    record = read_record(run.run_dir)
    if record is None:
        return None
    job_id = record["job_id"]
    rows = table.get(job_id, [])
    array = record.get("array")
    logs = f"log: {run.run_dir / markers.LOG}; slurm log: {slurm_log(run.run_dir, job_id, array=array)}"
    state = job_state(rows)
    job = f"job {job_id}" + (f" (array of {array}: {_count(rows, array)})" if array else "")
    if _rechecking(run, record, state):
        # complete when submitted, with its outputs in place: not done until its job decides
        if state == "unknown":
            return "pending", f"{job} not (yet) known to sacct; {recheck_text(record['recheck'])}"
        where = f" on {_nodes(rows)}; {logs}" if state == "running" else ""
        return state, f"{job}{where}; {recheck_text(record['recheck'])}"
    if markers.is_complete(run):  # the elements' own markers: sacct can lag by seconds
        done = len(read_elements(run.run_dir, array, run.config_hash)) if array else 0
        waiting = markers.reads_incomplete(run)
        return "done", (f"job {job_id}" + (f" (array of {array}: {done} completed)" if array else "")
                        + (f"; {waiting}" if waiting else ""))
    if record.get("config_hash") != run.config_hash:
        return "pending", f"config changed since {job} was submitted"
    failed_marker = _failed_marker(run)
    if failed_marker is not None:
        return "failed", f"{job}: {failed_marker}; {logs}"
    if state == "failed":
        crashed = crashed_task(run.run_dir, job_id)
        return "failed", f"{job}: {_why(rows, record, table)}{crashed}; {logs}"
    if state == "running":
        return state, f"{job} on {_nodes(rows)}; {logs}"
    if state == "pending":
        return state, job
    if state == "completed" and markers.read_done(run):  # done then, stale now: say why
        return "pending", (f"{markers.why_fresh(run) or 'config changed since it completed'} "
                           f"(it last ran as {job}); the next fcap-run submits it again")
    if state == "completed":
        return "failed", f"{job} completed without writing {markers.DONE}; {logs}"
    return "pending", f"{job} not (yet) known to sacct"


def _rechecking(run, record: dict, state: str) -> bool:
    """Whether the job of a stage submitted while complete (``recheck``) has yet to decide: it
    is queued or running, or sacct does not list it yet and it left no answer (slurm_job.py)."""
    if not record.get("recheck") or record.get("config_hash") != run.config_hash:
        return False
    if state in ("pending", "running"):
        return True
    job = record["job_id"]
    answers = [*(run.run_dir / LOG_DIR).glob(f"recheck.{job}.*.json"),
               *(run.run_dir / LOG_DIR).glob(f"recheck.{job}_*.json")]
    return state == "unknown" and not answers


def recheck_text(deps: list[str]) -> str:
    """What a job submitted while its stage was complete does (slurm.py's recheck)."""
    return (f"complete before: its job checks again when it starts and runs the stage only if "
            f"{', '.join(deps)} changed what it reads")


def _failed_marker(run) -> str | None:
    try:
        info = json.loads((run.run_dir / markers.FAILED).read_text())
    except (OSError, ValueError):
        return None
    if info.get("config_hash") != run.config_hash:
        return None
    lines = (info.get("error") or "failed").strip().splitlines()
    return lines[0] if lines else "failed"


def _why(rows, record, table) -> str:
    bad = [r for r in rows if r.state in FAILED]
    row = bad[0]
    if row.state == "CANCELLED":
        for dep_key, dep_id in (record.get("deps") or {}).items():
            if job_state(table.get(dep_id, [])) == "failed":
                return f"cancelled: dependency {dep_key} (job {dep_id}) failed"
        if "Dependency" in row.reason:
            return f"cancelled: a dependency failed ({row.reason})"
        return "cancelled"
    return f"SLURM state {row.state} (exit code {row.exit_code})"


def crashed_task(run_dir: Path, job_id: str) -> str:
    """'; task T failed: <its exception> (<its stderr>)' for the first task of ``job_id``
    whose stderr ends in a Python traceback, else ''. Only rank 0 writes FAILED.json: when
    another rank fails, srun stops the step and sacct shows the signal its peers were
    killed with (exit code 9:0), which names neither the rank nor the error."""
    logs = []
    for path in (Path(run_dir) / LOG_DIR).glob(f"{job_id}_*_log.err"):
        task = path.name[len(f"{job_id}_"):-len("_log.err")]
        if task.isdigit():
            logs.append((int(task), path))
    for task, path in sorted(logs):
        error = _exception(path)
        if error:
            return f"; task {task} failed: {error} ({path})"
    return ""


def _exception(path: Path, tail_bytes: int = 65536) -> str:
    """The exception line (and up to 3 indented lines after it) of the last traceback in
    ``path``, or '' when it holds none."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - tail_bytes))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call")]
    if not starts:
        return ""
    after = lines[starts[-1] + 1:]
    first = next((i for i, line in enumerate(after) if line and not line[0].isspace()), None)
    if first is None:
        return ""
    more = []
    for line in after[first + 1:first + 4]:
        if not line or not line[0].isspace():
            break
        more.append(line.strip())
    return " ".join([after[first].strip(), *more])


def _nodes(rows: list[JobRow]) -> str:
    """The nodes of the running rows (an array's elements may each have their own)."""
    lists = [r.nodes for r in rows if r.state in RUNNING and r.nodes and r.nodes != "None assigned"]
    return ",".join(dict.fromkeys(lists)) or "(nodes not reported yet)"


def _count(rows: list[JobRow], array: int) -> str:
    seen: dict[str, int] = {}
    for r in rows:
        if r.job_id.endswith("]"):  # "123_[1-2]" or "123_[1,3]": pending elements
            spec = r.job_id.split("[", 1)[1].rstrip("]").split("%")[0]
            n = sum(int(b) - int(a) + 1 if "-" in p else 1
                    for p in spec.split(",") for a, _, b in [p.partition("-")])
            seen[r.state.lower()] = seen.get(r.state.lower(), 0) + n
        else:
            seen[r.state.lower()] = seen.get(r.state.lower(), 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(seen.items())) or f"{array} unknown"


def _unsubmitted(run) -> tuple[str, str]:
    return ("done", "") if markers.is_complete(run) else ("not submitted", "")


def wait(runs: list, *, poll_s: float = 5.0, timeout_s: float | None = None) -> dict[str, tuple[str, str]]:
    """Poll until no run is pending or running; return {run.key: (state, detail)}."""
    deadline = None if timeout_s is None else time.time() + timeout_s
    while True:
        records = [read_record(r.run_dir) for r in runs]
        table = sacct([rec["job_id"] for rec in records if rec])
        states = {r.key: describe(r, table) or _unsubmitted(r) for r in runs}
        # a stage whose job has ended is settled, even if it is pending again (stale since)
        ended = {r.key for r, rec in zip(runs, records)
                 if rec and job_state(table.get(rec["job_id"], [])) in ("completed", "failed")}
        if all(s not in ("pending", "running") or key in ended
               for key, (s, _) in states.items()):
            return states
        if deadline is not None and time.time() > deadline:
            return states
        time.sleep(poll_s)


def rows(plan) -> dict[str, tuple[str, str]]:
    """{run key: (state, detail)} for every run of ``plan`` ever submitted to SLURM."""
    records = [read_record(r.run_dir) for r in plan.runs]
    table = sacct([rec["job_id"] for rec in records if rec])
    out = {}
    for run in plan.runs:
        described = describe(run, table)
        if described is not None:
            out[run.key] = described
    return out
