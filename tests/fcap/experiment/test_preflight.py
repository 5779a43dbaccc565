"""The dataset folders the selected runs read are checked before anything runs or is queued."""
from pathlib import Path

import pytest

from fcap.cli import main
from fcap.data.errors import DataError
from fcap.experiment import build_plan
from fcap.experiment.preflight import check_data

TABLE1 = Path(__file__).resolve().parents[3] / "experiments" / "table1.yaml"


# what Table 1's readers open by name in each dataset folder (DataSource.needs)
NEEDS = {"howto100m": ["caption.json"], "msrvtt": ["train_val_videodatainfo.json", "videos/all/"],
         "laion": ["00000.tar"]}


def data_root(tmp_path, *names):
    for name in names:
        (tmp_path / "data" / name).mkdir(parents=True)
        for rel in NEEDS[name]:
            path = tmp_path / "data" / name / rel
            path.mkdir(parents=True) if rel.endswith("/") else path.write_text("{}")
    return tmp_path / "data"


def plan(root, *extra, **kw):
    return build_plan(TABLE1, profile="paper", overrides=[f"datasets.root={root}", *extra], **kw)


def test_every_missing_folder_is_named_with_its_keys_and_readers(tmp_path):
    root = data_root(tmp_path, "howto100m", "msrvtt")  # no laion/
    with pytest.raises(DataError) as err:
        check_data(plan(root))
    text = str(err.value)
    assert text.startswith(f"missing data for {TABLE1}: 1 problem")
    assert (f"stages.pretrain.data.root, stages.pretrain.data.children[0].source.root: no folder "
            f"{root / 'laion'}, read by laion,seed=0/pretrain, laion,seed=1/pretrain, "
            f"laion,seed=2/pretrain and 3 more: put the dataset there") in text
    # runs that do not read it are not held up by it
    check_data(plan(root, only=["asr", "pseudolabels"]))
    check_data(plan(root, only=["pseudolabels_laion"], stages=["finetune", "evaluate"]))


def test_the_label_stages_videos_and_a_source_root_in_one_problem(tmp_path):
    root = data_root(tmp_path, "laion", "msrvtt")  # no howto100m/
    with pytest.raises(DataError) as err:
        check_data(plan(root, only=["pseudolabels"]))
    assert (f"stages.label.videos, stages.pretrain.data.root: no folder {root / 'howto100m'}, "
            f"read by all_variants/label, pseudolabels,seed=0/pretrain, "
            f"pseudolabels,seed=1/pretrain and 1 more") in str(err.value)
    # an absolute videos folder of the user's: checked as given
    with pytest.raises(DataError, match=f"stages.label.videos: no folder {tmp_path / 'elsewhere'},"):
        check_data(plan(root, f"stages.label.videos={tmp_path / 'elsewhere'}",
                        only=["pseudolabels"], stages=["label"]))


def test_a_complete_root_and_the_tiny_world_pass(tmp_path, in_tmp):
    check_data(plan(data_root(tmp_path, "howto100m", "laion", "msrvtt")))
    check_data(build_plan(TABLE1))  # no datasets.root: the world is generated when a stage starts


def test_the_command_line_refuses_before_anything_is_planned_to_run(tmp_path, in_tmp, capsys):
    root = data_root(tmp_path, "howto100m", "msrvtt")
    assert main([str(TABLE1), "--profile", "paper", f"datasets.root={root}", "--launcher", "local",
                 f"output_root={tmp_path / 'runs'}", "--dry-run"]) == 3  # a data error
    err = capsys.readouterr().err
    assert f"no folder {root / 'laion'}" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_a_relative_collection_without_a_root_names_the_working_folder(tmp_path, in_tmp):
    exp = TABLE1.parent / "pseudolabel_howto100m.yaml"
    with pytest.raises(DataError) as err:
        check_data(build_plan(exp))
    assert (f"stages.label.videos: no folder howto100m in the working folder {in_tmp} "
            f"(datasets.root is not set: set it to the folder holding howto100m/, or give an "
            f"absolute path), read by default/label") in str(err.value)
    (in_tmp / "howto100m").mkdir()
    check_data(build_plan(exp))


def test_a_complete_run_reads_nothing_unless_forced(tmp_path):
    from fcap.experiment import markers

    root = data_root(tmp_path, "howto100m", "msrvtt")  # laion/ gone after pretraining
    done = plan(root, f"output_root={tmp_path / 'runs'}", only=["laion"], seeds=1)
    pretrain = done.get("laion,seed=0", "pretrain")
    markers.claim(pretrain)
    markers.write_config(pretrain)
    markers.mark_done(pretrain, {}, 1.0)
    check_data(done)  # only finetune / evaluate run, and they read msrvtt/
    with pytest.raises(DataError, match=f"no folder {root / 'laion'}, read by laion,seed=0/pretrain:"):
        check_data(done, force=True)


def test_the_files_a_reader_opens_by_name_are_checked_in_a_present_folder(tmp_path):
    root = data_root(tmp_path, "howto100m", "laion", "msrvtt")
    (root / "msrvtt" / "train_val_videodatainfo.json").unlink()
    (root / "howto100m" / "caption.json").unlink()
    with pytest.raises(DataError) as err:
        check_data(plan(root, only=["asr"], seeds=1))
    text = str(err.value)
    assert text.startswith(f"missing data for {TABLE1}: 2 problems")
    assert (f"stages.pretrain.data.caption_json: no file {root / 'howto100m' / 'caption.json'} "
            f"(HowTo100M's ASR captions, ") in text
    assert (f"stages.finetune.data.split, stages.evaluate.data.split: no file "
            f"{root / 'msrvtt' / 'train_val_videodatainfo.json'} (MSR-VTT's train and val "
            f"annotations, the official MSR-VTT format") in text
    assert "read by asr,seed=0/finetune, asr,seed=0/evaluate: put the dataset there" in text
    (root / "laion" / "00000.tar").unlink()  # a LAION folder without webdataset shards
    with pytest.raises(DataError, match=f"stages.pretrain.data.format: no \\*.tar in "
                                        f"{root / 'laion'} \\(img2dataset's webdataset shards"):
        check_data(plan(root, only=["laion"], seeds=1))
    # the pseudolabels variant reads the merge's output, not the ASR file
    with pytest.raises(DataError) as err:
        check_data(plan(root, only=["pseudolabels"], seeds=1))
    assert "caption.json" not in str(err.value) and "1 problem" in str(err.value)
    (root / "msrvtt" / "train_val_videodatainfo.json").write_text("{}")
    check_data(plan(root, only=["pseudolabels"], seeds=1))


def test_a_model_checkpoint_given_as_a_missing_folder_is_refused_a_hub_id_is_not(tmp_path):
    root = data_root(tmp_path, "howto100m", "laion", "msrvtt")
    with pytest.raises(DataError) as err:
        check_data(plan(root, f"model.lm.source={tmp_path / 'opt'}", "model.visual.source=~/no-tsf",
                        "stages.label.captioner.source=./blip", only=["asr"], seeds=1))
    text = str(err.value)
    assert text.startswith(f"missing data for {TABLE1}: 2 problems")  # asr does not label
    assert (f"stages.pretrain.model.lm.source, stages.finetune.model.lm.source, "
            f"stages.evaluate.model.lm.source: no folder {tmp_path / 'opt'} (a model checkpoint, "
            f"as save_pretrained writes it; or give a hub id org/name), read by "
            f"asr,seed=0/pretrain, asr,seed=0/finetune, asr,seed=0/evaluate: put the checkpoint "
            f"there, or leave those runs out") in text
    assert f"no folder {Path('~/no-tsf').expanduser()} (a model checkpoint" in text
    with pytest.raises(DataError) as err:
        check_data(plan(root, "stages.label.captioner.source=./blip", stages=["label"]))
    assert f"stages.label.captioner.source: no folder {Path.cwd() / 'blip'} (" in str(err.value)
    # hub ids (the paper profile's defaults) and existing folders pass
    (tmp_path / "opt").mkdir()
    check_data(plan(root, f"model.lm.source={tmp_path / 'opt'}", only=["asr"], seeds=1))


def test_scoring_with_java_tools_and_no_java_on_path_is_refused_naming_the_keys(
        tmp_path, in_tmp, monkeypatch, capsys):
    from fcap.config import ConfigError
    from fcap.experiment.preflight import check_java

    check_java(build_plan(TABLE1))  # java is on this machine's PATH
    monkeypatch.setenv("PATH", str(tmp_path))  # and now it is not
    with pytest.raises(ConfigError) as err:
        check_java(build_plan(TABLE1, seeds=1))
    text = str(err.value)
    assert text.startswith(f"missing tool for {TABLE1}: 2 problems")  # training does not score
    assert ("stages.evaluate.scoring: tokenizer ptb and metrics meteor run Java and java is not "
            "on PATH (read by asr,seed=0/evaluate, pseudolabels,seed=0/evaluate, "
            "laion,seed=0/evaluate and 1 more): install a Java runtime (Debian / Ubuntu: apt "
            "install default-jre-headless), or score without Java: "
            "stages.evaluate.scoring.tokenizer=simple and no meteor in "
            "stages.evaluate.scoring.metrics (scores then differ") in text
    assert "stages.shuffled_frames.scoring: tokenizer ptb and metrics meteor run Java" in text
    without = ["stages.evaluate.scoring.tokenizer=simple",
               "stages.shuffled_frames.scoring.tokenizer=simple"]
    with pytest.raises(ConfigError, match="stages.evaluate.scoring: metrics meteor runs Java and "
                                          "java is not on PATH .*: no meteor in "
                                          "stages.evaluate.scoring.metrics"):
        check_java(build_plan(TABLE1, overrides=without, seeds=1))
    check_java(build_plan(TABLE1, overrides=without + [
        f"stages.{s}.scoring.metrics=[cider, attributes]" for s in ("evaluate", "shuffled_frames")]))
    # a training stage that validates scores too; fcap-run stops before anything runs
    assert main([str(TABLE1), "--only", "asr", "--stages", "finetune", "--seeds", "1",
                 "stages.finetune.train.eval_every=10", "stages.finetune.val_data={name: msrvtt}",
                 "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "stages.finetune.scoring: tokenizer ptb runs Java and java is not on PATH" in err
    assert not (in_tmp / "runs").exists()
