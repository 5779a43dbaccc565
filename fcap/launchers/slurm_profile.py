"""Cluster profiles (``slurm/<name>.yaml``) and the sbatch parameters of one stage.

A profile says where jobs go (partition, account, qos, constraint), what a node
offers (GPUs, cores, default memory, the partition's time limit) and how jobs
behave (signal delay before the time limit, requeue cap, extra ``#SBATCH``
flags, setup lines). What a *stage* asks for (nodes x GPUs, an array of shards,
time) lives in the experiment's ``resources:``; the profile checks it fits,
so a mistake is an error at submission, not a job pending forever.

Shell text: every value is quoted (``shlex.quote``) where it enters the script,
and none may hold a control character, since a newline cannot be quoted inside
an ``#SBATCH`` comment line. ``setup:`` lines are the one exception: they are
shell code, written by whoever owns the profile, and go into the script as written.
"""
from __future__ import annotations

import os
import re
import shlex
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from fcap.config import schema
from fcap.config.errors import ConfigError, Problem
from fcap.config.loader import read_yaml
from fcap.experiment.spec import control_char

REPO_ROOT = Path(__file__).resolve().parents[2]  # holds fcap/ (and slurm/ in a checkout)
FCAP_ROOT = str(REPO_ROOT)  # put on the jobs' PYTHONPATH: they import this fcap
SBATCH_FLAG = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")  # keys of ``sbatch:``: written unquoted


@dataclass(frozen=True)
class ClusterProfile:
    """One SLURM cluster; every field is optional so a profile states only what it needs."""

    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None  # e.g. "a100|h100"
    max_nodes: Optional[int] = None  # nodes one job may take; None: not checked
    gpus_per_node: Optional[int] = None  # GPUs a node has; a stage asking more is an error
    cpus_per_node: Optional[int] = None  # cores a node has; tasks x cpus_per_task must fit
    mem_gb: Optional[float] = None  # per node, for stages whose resources.mem_gb is None
    max_time_min: Optional[int] = None  # the partition's time limit; a longer stage is an error
    signal_delay_s: int = 120  # USR2 this long before the time limit (time to checkpoint)
    stop_grace_s: int = 60  # after USR2, a stage still running is requeued (SLURM kills it)
    max_requeues: Optional[int] = None  # cap over each stage's resources.max_requeues
    setup: tuple[str, ...] = ()  # shell code before srun, as written (module load ..., source venv)
    srun_args: tuple[str, ...] = ()  # extra srun flags, e.g. ["--cpu-bind=none"]; each quoted
    sbatch: dict[str, Any] = field(default_factory=dict)  # extra #SBATCH flags: {exclusive: true}
    python: Optional[str] = None  # interpreter path in the job, one word; default: sys.executable

    def __post_init__(self) -> None:
        for name in ("max_nodes", "gpus_per_node", "cpus_per_node", "max_time_min", "max_requeues"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.signal_delay_s < 0 or self.stop_grace_s < 0:
            raise ValueError("signal_delay_s and stop_grace_s must be >= 0")
        for name in ("partition", "account", "qos", "constraint", "python", "srun_args"):
            value = getattr(self, name)
            for text in (value if isinstance(value, tuple) else [value or ""]):
                if control_char(text):
                    raise ValueError(f"{name} must not contain control characters such as line "
                                     f"breaks (it is written into the sbatch script), got {text!r}")
        for key, value in self.sbatch.items():
            if not SBATCH_FLAG.fullmatch(str(key)):
                raise ValueError(f"sbatch keys are sbatch flags without '--' (letters, digits, "
                                 f"'-', '_', starting with a letter), got {key!r}")
            if not isinstance(value, (str, int, float, bool)) or control_char(str(value)):
                raise ValueError(f"sbatch values are single-line strings, numbers or true, got "
                                 f"{key}: {value!r}")


def find_profile(name: str, *, cwd: Path | None = None) -> Path:
    """``name`` as a path (``*.yaml`` or containing ``/``), else ``slurm/<name>.yaml``
    under the working directory, then under fcap's checkout."""
    cwd = cwd or Path.cwd()
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name) if Path(name).is_absolute() else cwd / name
        if path.is_file():
            return path
        raise ConfigError([Problem("command line", "launcher.profile",
                                   f"cluster profile file not found: {path}")])
    tried = [cwd / "slurm" / f"{name}.yaml", REPO_ROOT / "slurm" / f"{name}.yaml"]
    for path in tried:
        if path.is_file():
            return path
    known = sorted({p.stem for d in {t.parent for t in tried} if d.is_dir()
                    for p in d.glob("*.yaml")})
    raise ConfigError([Problem("launcher", "launcher.profile", (
        f"no cluster profile '{name}' (looked for {', '.join(map(str, tried))}); "
        f"known: {', '.join(known) or '(none)'}"))])


def load_profile(name: str) -> tuple[ClusterProfile, Path]:
    path = find_profile(name)
    data = read_yaml(path, what="cluster profile")
    return schema.from_dict(ClusterProfile, data, source=str(path)), path


def sbatch_parameters(profile: ClusterProfile, resources, *, job_name: str, where: str,
                      source: str, dependency: str | None = None) -> dict[str, Any]:
    """submitit's SLURM parameters for one stage (``SlurmExecutor.update_parameters`` keywords).

    ``where`` is the dotted key of the stage's resources (for error messages),
    ``source`` the profile file. Raises ConfigError if the stage does not fit.
    """
    r = resources
    tasks = r.ntasks_per_node
    problems = []

    def check(ok: bool, key: str, message: str) -> None:
        if not ok:
            problems.append(Problem(source, f"{where}.{key}", message))

    p = profile
    check(p.max_nodes is None or r.nodes <= p.max_nodes, "nodes",
          f"asks for {r.nodes} nodes; the cluster profile allows {p.max_nodes}")
    check(p.gpus_per_node is None or r.gpus_per_node <= p.gpus_per_node, "gpus_per_node",
          f"asks for {r.gpus_per_node} GPUs per node; a node has {p.gpus_per_node}")
    check(p.cpus_per_node is None or tasks * r.cpus_per_task <= p.cpus_per_node, "cpus_per_task",
          f"{tasks} task(s) x {r.cpus_per_task} cpus_per_task exceed the {p.cpus_per_node} "
          f"cores of a node")
    check(p.max_time_min is None or r.time_min <= p.max_time_min, "time_min",
          f"{r.time_min} min exceeds the partition limit of {p.max_time_min} min")
    check(p.signal_delay_s < r.time_min * 60, "time_min",
          f"{r.time_min} min leaves no time before the USR2 signal sent "
          f"signal_delay_s={p.signal_delay_s} s before the limit")
    if problems:
        raise ConfigError(problems, title="stage does not fit the cluster profile")
    params: dict[str, Any] = {
        "job_name": job_name, "time": r.time_min, "nodes": r.nodes, "ntasks_per_node": tasks,
        "cpus_per_task": r.cpus_per_task, "signal_delay_s": p.signal_delay_s,
        "setup": [f"export PYTHONPATH={shlex.quote(FCAP_ROOT)}${{PYTHONPATH:+:$PYTHONPATH}}",
                  *p.setup],
        # --requeue: eligible for requeue whatever the cluster's JobRequeue default;
        # --kill-on-invalid-dep: a failed dependency cancels this job (status says why).
        "additional_parameters": {"requeue": True, "kill-on-invalid-dep": "yes", **p.sbatch},
    }
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(p, key):
            params[key] = getattr(p, key)
    if r.gpus_per_node:
        params["gpus_per_node"] = r.gpus_per_node
    mem = r.mem_gb if r.mem_gb is not None else p.mem_gb
    if mem is not None:
        params["mem"] = f"{int(mem)}GB" if mem == int(mem) else f"{int(mem * 1024)}MB"
    # One rank failing ends the step: its peers would otherwise hang in a collective.
    params["srun_args"] = ["--kill-on-bad-exit=1", *p.srun_args]
    if dependency:
        params["dependency"] = dependency
    return params


def python_of(profile: ClusterProfile) -> str:
    """The job's interpreter as shell text: one quoted word."""
    return shlex.quote(profile.python or sys.executable)


def make_executor(folder: Path, params: dict[str, Any], *, python: str, max_requeues: int = 0):
    """The submitit executor a stage is submitted through (``python``: shell text, one word)."""
    import submitit

    # submitit writes slurm_python into the script as shell text: it comes quoted (python_of).
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_python=python,
                                     slurm_max_num_timeout=max_requeues)
    executor.update_parameters(**{f"slurm_{k}": v for k, v in params.items()})
    return executor


# Stand-ins for a dry run: sbatch answers as sbatch does; srun only has to exist (submitit
# refuses to build a SLURM executor where srun is not on PATH) and is never run.
DRY_SBATCH = '#!/bin/sh\necho "Submitted batch job 4242"\n'
DRY_SRUN = "#!/bin/sh\nexit 1\n"


@contextmanager
def _first_on_path(folder: Path):
    saved = os.environ.get("PATH")
    os.environ["PATH"] = str(folder) + (os.pathsep + saved if saved else "")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved


def render_sbatch(params: dict[str, Any], *, folder: Path, python: str,
                  array: int | None = None) -> str:
    """The sbatch script submitting these parameters into ``folder`` writes; submits nothing.

    submitit writes it, through its public API: the same executor as a real
    submission, in a scratch folder, with stand-ins for ``sbatch`` and ``srun``
    first on PATH for this call only, so no cluster is needed and none is
    contacted. In the script, every word holding the scratch folder then gets
    ``folder`` instead, quoted as submitit quotes its words (``shlex.quote``).
    """
    folder = Path(folder).expanduser().absolute()  # as submitit's executor holds it
    with tempfile.TemporaryDirectory(prefix="fcap-dry-run-") as tmp:
        scratch = Path(tmp) / "slurm"
        if shlex.quote(str(scratch)) != str(scratch):
            raise RuntimeError(f"--dry-run needs a temporary folder whose path is one plain shell "
                               f"word; got {str(scratch)!r}: set TMPDIR to another folder")
        stubs = Path(tmp) / "bin"
        stubs.mkdir()
        for name, text in (("sbatch", DRY_SBATCH), ("srun", DRY_SRUN)):
            (stubs / name).write_text(text)
            (stubs / name).chmod(0o755)
        try:
            with _first_on_path(stubs):
                executor = make_executor(scratch, params, python=python)
                job = executor.submit_array([print] * array)[0] if array else executor.submit(print)
        except OSError as err:  # e.g. a temporary folder mounted noexec
            raise RuntimeError(f"--dry-run could not run its stand-in sbatch in {stubs} ({err}); "
                               f"set TMPDIR to a folder that allows executables") from err
        script = job.paths.submission_file.read_text()
    return re.sub(re.escape(str(scratch)) + r"(\S*)",
                  lambda m: shlex.quote(str(folder) + m.group(1)), script)
