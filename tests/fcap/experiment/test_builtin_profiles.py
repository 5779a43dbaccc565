"""fcap's built-in profiles and bases work for experiments kept outside the checkout."""
from pathlib import Path
import textwrap

import pytest

from fcap.config import ConfigError
from fcap.config.loader import BUILTIN_DIR
from fcap.experiment import build_plan

TABLE1 = Path(__file__).resolve().parents[3] / "experiments" / "table1.yaml"

# An experiment of a user's own repository: the paper's base setup, one training stage.
OWN_EXPERIMENT = """
    name: mine
    base: fcap://base/frozen_captioner.yaml
    stages:
      pretrain:
        task: caption_pretrain
        train: {steps: 400}
        data: {name: msrvtt, root: msrvtt, split: train}
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_builtin_base_and_profile_by_name_from_any_folder(tmp_path, in_tmp):
    exp = write(tmp_path / "myrepo" / "exps" / "mine.yaml", OWN_EXPERIMENT)
    plan = build_plan(exp, profile="tiny")
    cfg = plan.get("default", "pretrain").cfg
    assert plan.profile == "tiny"
    assert cfg.model.lm.cfg.source == "tiny-pretrained" and cfg.train.precision == "fp32"  # tiny profile
    assert list(cfg.model.adapters.layers) == [2, 3] and cfg.train.log_every == 5
    paper = build_plan(exp, profile="paper", overrides=[f"datasets.root={tmp_path}"])
    cfg = paper.get("default", "pretrain").cfg
    assert paper.header.launcher.name == "slurm"  # the paper profile
    # the base's own values
    # (its relative checkpoint folder is the working folder's, made absolute)
    assert cfg.model.visual.cfg.source == str(in_tmp / "checkpoints/timesformer_divST_96x32_224_howto100m")
    assert list(cfg.model.adapters.layers) == [12, 14, 16, 18, 20, 22] and cfg.train.log_every == 20


def test_paper_profile_on_a_local_launcher(tmp_path, in_tmp):
    exp = write(tmp_path / "mine.yaml", OWN_EXPERIMENT)
    root = f"datasets.root={tmp_path}"
    assert build_plan(exp, profile="paper", overrides=[root],
                      launcher="local").header.launcher.name == "local"
    assert build_plan(exp, profile="paper", overrides=[root, "launcher={name: local}"]
                      ).header.launcher.name == "local"
    # the dotted form keeps the paper profile's `profile: example_gpu`: say so, and the way out
    with pytest.raises(ConfigError) as err:
        build_plan(exp, profile="paper", overrides=[root, "launcher.name=local"])
    assert ("launcher.profile: unknown key 'profile'; allowed keys: nproc=1, jobs=1 (command line set "
            "'launcher.name: local', which keeps the options given for the previous launcher; "
            "to replace the whole block, set launcher={name: local, ...})") in str(err.value)


def test_no_dataset_root_runs_the_builtin_tiny_profile_outside_the_checkout(tmp_path, in_tmp):
    exp = write(tmp_path / "elsewhere" / "mine.yaml", OWN_EXPERIMENT)
    plan = build_plan(exp)
    assert plan.profile == "tiny"
    assert "running the built-in 'tiny' profile" in plan.notes[0]
    assert plan.get("default", "pretrain").cfg.model.visual.cfg.source == "tiny-pretrained"


def test_own_profile_wins_and_can_extend_the_builtin_one(tmp_path, in_tmp):
    exp = write(tmp_path / "myrepo" / "exps" / "mine.yaml", OWN_EXPERIMENT)
    write(tmp_path / "myrepo" / "profiles" / "tiny.yaml", """
        base: fcap://profiles/tiny.yaml
        train: {batch_size: 3}
    """)
    cfg = build_plan(exp, profile="tiny").get("default", "pretrain").cfg
    assert cfg.train.batch_size == 3 and cfg.model.lm.cfg.source == "tiny-pretrained"
    explicit = build_plan(exp, profile="fcap://profiles/tiny.yaml").get("default", "pretrain").cfg
    assert explicit.train.batch_size == 16  # the built-in one as it ships


def test_unknown_profile_lists_every_place_looked_in(tmp_path, in_tmp):
    exp = write(tmp_path / "a" / "b" / "mine.yaml", OWN_EXPERIMENT)
    with pytest.raises(ConfigError) as err:
        build_plan(exp, profile="tiyn")
    msg = str(err.value)
    assert f"no profile 'tiyn' in the folders above {exp} or built into fcap" in msg
    assert "did you mean 'tiny'?" in msg and "known: paper, tiny" in msg
    with pytest.raises(ConfigError, match=r"or built into fcap; known: paper, tiny; looked in"):
        build_plan(exp, profile="unrelated")  # no suggestion: still a sentence
    folders = ", ".join(str(p) for p in exp.resolve().parents)
    assert f"looked in profiles/ and experiments/profiles/ of {folders}, and in fcap's " \
           f"built-in profiles {BUILTIN_DIR / 'profiles'}" in msg


def test_unknown_builtin_file_lists_what_fcap_ships(tmp_path, in_tmp):
    exp = write(tmp_path / "mine.yaml", OWN_EXPERIMENT.replace("frozen_captioner", "frozen"))
    with pytest.raises(ConfigError) as err:
        build_plan(exp, profile="tiny")
    assert (f"{exp}: base: no built-in file fcap://base/frozen.yaml (fcap ships {BUILTIN_DIR}); "
            "known: fcap://base/frozen_captioner.yaml, fcap://profiles/paper.yaml, "
            "fcap://profiles/tiny.yaml") in str(err.value)


def test_a_stage_a_variant_adds_gets_the_profiles_task_overlay(fcap_cache):
    plan = build_plan(TABLE1, profile="tiny")
    control = plan.get("pseudolabels_laion,seed=0", "shuffled_frames")
    evaluate = plan.get("pseudolabels_laion,seed=0", "evaluate")
    assert control.cfg.shuffle_frames and not evaluate.cfg.shuffle_frames
    assert control.cfg.scoring == evaluate.cfg.scoring
    assert control.resources.gpus_per_node == 0 and control.cfg.batch_size == 20
    assert ("pseudolabels,seed=0", "shuffled_frames") not in {(r.variant, r.stage) for r in plan.runs}
    # and the label stage, shared by every seed, runs once with the experiment's seed
    labels = [r for r in plan.runs if r.stage == "label"]
    assert len(labels) == 1 and labels[0].seed == 0
    moved = build_plan(TABLE1, profile="tiny", overrides=["seed=5"])
    assert [r.seed for r in moved.runs if r.stage == "pretrain"][:3] == [5, 6, 7]


def test_tiny_profile_fine_tunes_twice_its_scale_and_a_later_step_scale_reaches_every_stage():

    def steps(**kw):
        plan = build_plan(TABLE1, **kw)
        return {s: plan.get("asr,seed=0", s).cfg.train.total_steps for s in ("pretrain", "finetune")}

    assert steps(profile="tiny") == {"pretrain": 400, "finetune": 400}  # 4K x 0.1, 2K x 0.1 x 2
    # the command line's step_scale is not shadowed by the profile's per-task factor
    assert steps(profile="tiny", overrides=["train.step_scale=0.01"]) == {"pretrain": 40,
                                                                          "finetune": 40}
    assert steps(profile="tiny", overrides=["stages.finetune.train.step_factor=1"]
                 ) == {"pretrain": 400, "finetune": 200}


def test_step_factor_must_be_positive():
    from fcap.train.config import TrainConfig

    assert TrainConfig(steps=10, step_scale=0.5, step_factor=3).total_steps == 15
    with pytest.raises(ValueError, match="step_factor must be > 0, got 0"):
        TrainConfig(step_factor=0)


def test_tiny_profile_runs_stages_side_by_side_only_on_the_local_launcher(tmp_path, in_tmp):
    exp = write(tmp_path / "mine.yaml", OWN_EXPERIMENT)
    assert build_plan(exp, profile="tiny").header.launcher.cfg.jobs == "auto"
    # --launcher slurm: the profile's local options are left out, and the run says so
    plan = build_plan(exp, profile="tiny", launcher="slurm")
    assert plan.header.launcher.name == "slurm"
    assert "--launcher slurm: not using the local launcher's options (jobs: auto)" in plan.notes
    # an experiment that names its launcher keeps it, without the tiny profile's local options
    slurm_exp = write(tmp_path / "on_slurm.yaml", OWN_EXPERIMENT + "    launcher: {name: slurm}\n")
    plan = build_plan(slurm_exp, profile="tiny")
    assert plan.header.launcher.name == "slurm" and not any("jobs" in n for n in plan.notes)
    # --launcher naming the launcher the block is for keeps its options
    assert build_plan(exp, profile="tiny", launcher="local").header.launcher.cfg.jobs == "auto"
