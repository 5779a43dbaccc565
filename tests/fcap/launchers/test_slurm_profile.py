"""Cluster profiles, sbatch rendering, --dry-run and the distributed env: no cluster needed."""
from pathlib import Path

import pytest
import yaml
from slurm_testing import experiment, fcap_run

from fcap.config.errors import ConfigError
from fcap.experiment.spec import Resources
from fcap.launchers.slurm_env import DIST_KEYS, export_distributed_env, master_port
from fcap.launchers.slurm_profile import (FCAP_ROOT, find_profile, load_profile, render_sbatch,
                                          sbatch_parameters)


def test_shipped_profiles_load():
    local, path = load_profile("local")
    assert path.name == "local.yaml" and local.partition == "debug" and local.cpus_per_node == 2
    gpu, _ = load_profile("example_gpu")
    assert gpu.gpus_per_node == 8 and gpu.sbatch["exclusive"] is True


def test_profile_mistakes_name_the_file_key_and_closest_match(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"partiton": "gpu", "max_nodes": "two"}))
    with pytest.raises(ConfigError) as err:
        load_profile(str(bad))
    text = str(err.value)
    assert f"{bad}: partiton: unknown key 'partiton'; did you mean 'partition'?" in text
    assert f"{bad}: max_nodes: expected Optional[int], got 'two'" in text
    with pytest.raises(ConfigError, match="no cluster profile 'nope'.*known: .*example_gpu, local"):
        find_profile("nope")


def test_a_stage_that_does_not_fit_the_profile_is_refused_before_submission():
    local, path = load_profile("local")
    too_big = Resources(nodes=2, gpus_per_node=1, tasks_per_node=2, cpus_per_task=2, time_min=5)
    with pytest.raises(ConfigError) as err:
        sbatch_parameters(local, too_big, job_name="x", where="stages.train.resources", source=str(path))
    text = str(err.value)
    assert "stages.train.resources.nodes: asks for 2 nodes; the cluster profile allows 1" in text
    assert "stages.train.resources.gpus_per_node: asks for 1 GPUs per node; a node has 0" in text
    assert "2 task(s) x 2 cpus_per_task exceed the 2 cores of a node" in text
    assert str(path) in text


def test_gpu_stage_renders_one_task_per_gpu_with_profile_defaults():
    gpu, path = load_profile("example_gpu")
    res = Resources(nodes=4, gpus_per_node=8, cpus_per_task=10, time_min=600)
    params = sbatch_parameters(gpu, res, job_name="t1.default.pretrain", where="w", source=str(path),
                               dependency="afterok:41")
    script = render_sbatch(params, folder=Path("/runs/x/slurm"), python="py")
    for line in ("#SBATCH --nodes=4", "#SBATCH --gpus-per-node=8", "#SBATCH --ntasks-per-node=8",
                 "#SBATCH --cpus-per-task=10", "#SBATCH --mem=480GB", "#SBATCH --time=600",
                 "#SBATCH --partition=gpu", "#SBATCH --account=my_lab", "#SBATCH --qos=normal",
                 "#SBATCH --constraint='a100|h100'", "#SBATCH --signal=USR2@300",
                 "#SBATCH --dependency=afterok:41", "#SBATCH --kill-on-invalid-dep=yes",
                 "#SBATCH --requeue", "#SBATCH --exclusive", "#SBATCH --mail-type=FAIL",
                 "module load cuda/12.4", f"export PYTHONPATH={FCAP_ROOT}",
                 "--kill-on-bad-exit=1 --cpu-bind=none py -u -m submitit.core._submit /runs/x/slurm"):
        assert line in script, line
    array = render_sbatch(params, folder=Path("/r"), python="py", array=5)
    assert "#SBATCH --array=0-4%5" in array and "/r/%A_%a_0_log.err" in array


def test_rendering_never_runs_the_real_sbatch_and_needs_no_slurm(tmp_path, monkeypatch):
    """Only the stand-ins run: a real sbatch/srun first on PATH leaves a trace if called,
    and rendering works with nothing else on PATH (a machine without SLURM)."""
    traps = tmp_path / "bin"
    traps.mkdir()
    for name in ("sbatch", "srun"):
        (traps / name).write_text(f"#!/bin/sh\ntouch {tmp_path}/{name}-ran\n"
                                  'echo "Submitted batch job 1"\n')
        (traps / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(traps))
    local, path = load_profile("local")
    params = sbatch_parameters(local, Resources(cpus_per_task=1, time_min=5), job_name="e.v.s",
                               where="w", source=str(path))
    script = render_sbatch(params, folder=tmp_path / "runs" / "slurm", python="py")
    assert script.startswith("#!/bin/bash") and "#SBATCH --job-name=e.v.s" in script
    assert f"py -u -m submitit.core._submit {tmp_path}/runs/slurm" in script
    assert not list(tmp_path.glob("*-ran")) and not (tmp_path / "runs").exists()
    import os

    assert os.environ["PATH"] == str(traps)  # restored


def test_dry_run_prints_scripts_with_dependencies_and_submits_nothing(tmp_path, in_tmp, capsys):
    path = experiment(tmp_path, "dry", {
        "label": {"task": "slurm_shard", "resources": {"array": 3, "cpus_per_task": 1, "time_min": 5}},
        "merge": {"task": "slurm_merge_shards", "after": ["label"],
                  "resources": {"tasks_per_node": 2, "cpus_per_task": 1, "time_min": 5}}})
    code, out = fcap_run(path, "--launcher", "slurm", "--dry-run")
    assert code == 0, out
    assert "fcap's example" not in capsys.readouterr().err  # the tests' own profile
    assert out.count("#!/bin/bash") == 2 and "#SBATCH --array=0-2%3" in out
    assert "=== default/merge  task=slurm_merge_shards" in out and "(afterok default/label)" in out
    assert "#SBATCH --dependency='afterok:<default/label>'" in out
    assert "#SBATCH --ntasks-per-node=2" in out
    assert not list((tmp_path / "runs").rglob("slurm.json"))


def test_submitting_from_a_machine_without_slurm_is_refused_before_anything_is_written(
        tmp_path, in_tmp, monkeypatch, capsys):
    path = experiment(tmp_path, "nosl", {"label": {"task": "slurm_shard",
                                                   "resources": {"cpus_per_task": 1}}})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no sbatch, no srun
    code, out = fcap_run(path, "--launcher", "slurm")
    assert code == 2, out
    assert ("command line: launcher.name: launcher slurm submits with sbatch and runs with srun, "
            "and sbatch and srun are not on PATH: this machine is not a SLURM submit host. Submit "
            "from the cluster's login node, or run here with --launcher local") in (
        capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()
    code, out = fcap_run(path, "--launcher", "slurm", "--dry-run")  # scripts need no SLURM
    assert code == 0 and "#SBATCH" in out, out


def task_env(monkeypatch, rank: int, *, restarts: int = 0, stale: bool = True) -> dict:
    """What SLURM sets for task ``rank`` of job 4242: 2 nodes x 4 tasks (node list
    compressed as SLURM writes it), plus stale values of a submitter's own torchrun."""
    for key in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", *DIST_KEYS):
        # set then delete: monkeypatch records the key, so what export_distributed_env
        # writes into os.environ is undone after the test (else later tests inherit RANK...)
        monkeypatch.setenv(key, "unset")
        monkeypatch.delenv(key)
    for key, value in {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "8", "SLURM_JOB_NUM_NODES": "2",
                       "SLURM_JOB_NODELIST": "gpu-a[07-08]", "SLURM_NODEID": str(rank // 4),
                       "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank % 4),
                       "SLURM_RESTART_COUNT": str(restarts), "SUBMITIT_EXECUTOR": "slurm"}.items():
        monkeypatch.setenv(key, value)
    if stale:
        monkeypatch.setenv("MASTER_PORT", "29500")
        monkeypatch.setenv("RANK", "0")
    return export_distributed_env()


def test_every_task_on_every_node_derives_the_same_rendezvous(monkeypatch):
    envs = [task_env(monkeypatch, r) for r in range(8)]
    assert [e["RANK"] for e in envs] == [str(r) for r in range(8)]
    assert [e["LOCAL_RANK"] for e in envs] == ["0", "1", "2", "3"] * 2
    assert [e["NODE_RANK"] for e in envs] == ["0"] * 4 + ["1"] * 4
    assert {(e["MASTER_ADDR"], e["MASTER_PORT"], e["WORLD_SIZE"], e["LOCAL_WORLD_SIZE"])
            for e in envs} == {("gpu-a07", str(master_port("4242")), "8", "4")}
    import os

    assert {k: os.environ[k] for k in DIST_KEYS} == envs[-1]  # exported, stale values replaced
    # a requeued run moves to a fresh port
    assert task_env(monkeypatch, 0, restarts=1)["MASTER_PORT"] != envs[0]["MASTER_PORT"]
    # below the ephemeral ports (32768-60999) outgoing connections on the node take
    assert all(20000 <= master_port(str(j), r) < 32768 for j in (1, 99999, 123456789, 2273)
               for r in range(3))
    # jobs running at the same time on one master node: 12,767 consecutive ids, 12,767 ports
    # (it was 1,824: job ids 1,824 apart shared a port)
    assert len({master_port(str(j)) for j in range(5000, 5000 + 12767)}) == 12767


def test_paper_dry_run_of_a_two_node_stage_shows_every_ranks_environment(tmp_path, in_tmp,
                                                                        capsys):
    """The environment handling the multinode tests exercise, run for a 2 x 8 stage."""
    root = Path(__file__).resolve().parents[3]
    (tmp_path / "data" / "laion").mkdir(parents=True)  # what the selected stage reads
    (tmp_path / "data" / "laion" / "00000.tar").write_bytes(b"")
    (tmp_path / "tsf").mkdir()  # the converted TimeSformer checkpoint
    code, out = fcap_run(root / "experiments" / "table1.yaml", "--profile", "paper",
                         f"datasets.root={tmp_path / 'data'}", f"model.visual.source={tmp_path / 'tsf'}",
                         "--only", "laion",
                         "--stages", "pretrain", "--dry-run")
    assert code == 0, out
    # the paper profile's launcher.profile is the shipped example: say so
    assert (f"fcap: warning: launcher.profile is fcap's example {root / 'slurm' / 'example_gpu.yaml'}"
            f" (partition gpu, account my_lab): copy it to slurm/<your_cluster>.yaml") in (
        capsys.readouterr().err)
    block = out.split("# torch.distributed environment", 1)[1].splitlines()[1:17]
    envs = [dict(kv.split("=", 1) for kv in line.lstrip("# ").split()) for line in block]
    assert [e["RANK"] for e in envs] == [str(r) for r in range(16)]
    assert [e["LOCAL_RANK"] for e in envs] == [str(r) for r in range(8)] * 2
    assert [e["NODE_RANK"] for e in envs] == ["0"] * 8 + ["1"] * 8
    assert {(e["MASTER_ADDR"], e["WORLD_SIZE"], e["LOCAL_WORLD_SIZE"]) for e in envs} == {
        ("node1", "16", "8")}
