"""User strings in sbatch scripts: quoted where they can be, refused where they cannot.

The scripts are run with bash and a stub ``srun`` that records its arguments:
no cluster needed, and a value that escaped its quotes leaves a ``pwned-*`` file.
"""
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from slurm_testing import experiment, fcap_run

from fcap.config import ConfigError
from fcap.experiment.spec import Resources
from fcap.launchers.slurm_profile import load_profile, python_of, render_sbatch, sbatch_parameters

# One line each; '{tag}' keeps the file a value would create apart from the others'.
HOSTILE = "a;touch pwned-{tag} $(touch pwned-{tag}) `touch pwned-{tag}` 'q' \"dq\""
STUB_SRUN = '#!/bin/bash\nprintf "%s\\0" "$@" > "$SRUN_ARGS"\n'


def hostile(tag: str) -> str:
    return HOSTILE.format(tag=tag)


def write_profile(tmp_path: Path, **values) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def run_script(tmp_path: Path, script: str) -> list[str]:
    """Run ``script`` with bash (srun stubbed); the arguments srun got."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "srun").write_text(STUB_SRUN)
    (bin_dir / "srun").chmod(0o755)
    (tmp_path / "job.sh").write_text(script)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "SRUN_ARGS": str(tmp_path / "srun.args")}
    proc = subprocess.run(["bash", str(tmp_path / "job.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.rglob("pwned-*")), "a value ran as a command"
    return (tmp_path / "srun.args").read_text().split("\0")[:-1]


def sbatch_flags(script: str) -> dict[str, str]:
    """``#SBATCH`` flags sbatch reads: the comment lines before the first command."""
    flags = {}
    for line in script.splitlines()[1:]:
        if line.strip() and not line.startswith("#"):
            break
        if line.startswith("#SBATCH "):
            (word,) = shlex.split(line[len("#SBATCH "):])  # one quoted word per flag
            key, _, value = word.partition("=")
            flags[key] = value
    return flags


@pytest.mark.parametrize("key,value", [
    ("partition", "gpu\ntouch pwned"), ("account", "lab\rx"), ("qos", "normal\n#"),
    ("constraint", "a100\n|h100"), ("python", "/usr/bin/python3\ntouch pwned"),
    ("srun_args", ["--cpu-bind=none\ntouch pwned"]), ("sbatch", {"comment": "a\ntouch pwned"}),
    ("sbatch", {"comment\ntouch pwned": "x"}), ("sbatch", {"mail-type;touch pwned": "x"}),
    ("sbatch", {"comment": ["a", "b"]}),
])
def test_profile_values_that_cannot_be_quoted_are_refused_at_load(tmp_path, key, value):
    path = write_profile(tmp_path, **{key: value})
    with pytest.raises(ConfigError) as err:
        load_profile(str(path))
    assert f"{path}: {key}: ClusterProfile: {key} " in str(err.value)


def test_rendered_script_keeps_every_value_one_inert_word(tmp_path):
    python = tmp_path / hostile("py") / "python"
    folder = tmp_path / hostile("dir") / "slurm"
    srun_args = [f"--comment={hostile('srun')}", hostile("srun2")]
    profile, _ = load_profile(str(write_profile(
        tmp_path, partition=hostile("part"), account=hostile("acct"), qos=hostile("qos"),
        constraint="a100|h100", python=str(python), srun_args=srun_args,
        sbatch={"comment": hostile("sb")})))
    params = sbatch_parameters(profile, Resources(cpus_per_task=1, time_min=5),
                               job_name="e.lr=0.1,gate=vector.s", where="w", source="p")
    script = render_sbatch(params, folder=folder, python=python_of(profile))
    argv = run_script(tmp_path, script)
    assert argv[-5:] == [str(python), "-u", "-m", "submitit.core._submit", str(folder)]
    assert argv[argv.index("--kill-on-bad-exit=1") + 1:][:2] == srun_args
    assert argv[argv.index("--output") + 1].startswith(f"{folder}/")
    flags = sbatch_flags(script)
    assert (flags["--partition"], flags["--account"], flags["--qos"], flags["--comment"]) == \
        (hostile("part"), hostile("acct"), hostile("qos"), hostile("sb"))
    assert flags["--job-name"] == "e.lr=0.1,gate=vector.s"
    assert flags["--output"].startswith(f"{folder}/")
    assert {"--requeue", "--kill-on-invalid-dep", "--signal", "--time"} <= set(flags)


def test_submitted_script_quotes_the_interpreter_and_output_root(tmp_path, in_tmp, monkeypatch):
    python = tmp_path / hostile("py") / "python"
    profile = write_profile(tmp_path, python=str(python))
    captured = tmp_path / "submitted.sh"
    # stand-ins first on PATH: sbatch keeps the script submitit wrote and answers like sbatch
    # does; srun only has to exist (submitit looks for it)
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {shlex.quote(str(captured))}\n'
                                  'echo "Submitted batch job 4242"\n')
    (stubs / "srun").write_text("#!/bin/sh\nexit 1\n")
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stubs}:{os.environ['PATH']}")
    root = tmp_path / hostile("out")
    path = experiment(tmp_path, "q", {"s": {"task": "slurm_shard", "resources": {"time_min": 5}}},
                      output_root=str(root), launcher={"name": "slurm", "profile": str(profile)})
    code, out = fcap_run(path)
    assert code == 0 and "submitted job 4242" in out, out
    argv = run_script(tmp_path, captured.read_text())
    folder = root / "q" / "default" / "s" / "slurm"
    assert argv[-5:] == [str(python), "-u", "-m", "submitit.core._submit", str(folder)]


def test_a_working_directory_with_a_line_break_is_refused(tmp_path, monkeypatch, capsys):
    where = tmp_path / "a\ntouch pwned"
    where.mkdir()
    monkeypatch.chdir(where)
    path = experiment(tmp_path, "nl", {"s": {"task": "slurm_shard", "resources": {"time_min": 5}}},
                      output_root="runs")
    code, out = fcap_run(path, "--launcher", "slurm", "--dry-run")
    assert code == 2 and "#SBATCH" not in out, out
    assert "contains the control character '\\n'" in capsys.readouterr().err
