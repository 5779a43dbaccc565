"""The dataset folders the selected runs read are checked before anything runs or is queued."""
import json
import re
from pathlib import Path

import pytest

from fcap.cli import main
from fcap.config.errors import ConfigError
from fcap.data.errors import DataError
from fcap.experiment import build_plan
from fcap.experiment.preflight import check_data, check_models

TABLE1 = Path(__file__).resolve().parents[3] / "experiments" / "table1.yaml"


# what Table 1's readers open by name in each dataset folder (DataSource.needs)
NEEDS = {"howto100m": ["caption.json"], "msrvtt": ["train_val_videodatainfo.json", "videos/all/"],
         "laion": ["00000.tar"]}


# an MSR-VTT info file the preflight reads as fine-tuning will (one train, one val video)
MSRVTT_INFO = json.dumps({
    "videos": [{"video_id": "video0", "split": "train"}, {"video_id": "video1", "split": "validate"}],
    "sentences": [{"video_id": "video0", "caption": "a man cooks"},
                  {"video_id": "video1", "caption": "a dog runs"}]})


def data_root(tmp_path, *names):
    """The named dataset folders in their layout, and a converted TimeSformer folder (the
    paper's encoder is a local checkpoint: plan() passes it)."""
    (tmp_path / "ckpt" / "tsf").mkdir(parents=True, exist_ok=True)
    for name in names:
        (tmp_path / "data" / name).mkdir(parents=True)
        for rel in NEEDS[name]:
            path = tmp_path / "data" / name / rel
            if rel.endswith("/"):
                path.mkdir(parents=True)
            else:
                path.write_text(MSRVTT_INFO if rel.endswith("videodatainfo.json") else "{}")
    return tmp_path / "data"


def plan(root, *extra, **kw):
    return build_plan(TABLE1, profile="paper", overrides=[
        f"datasets.root={root}", f"model.visual.source={root.parent / 'ckpt' / 'tsf'}", *extra], **kw)


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


def test_a_folder_named_nearly_so_is_suggested(tmp_path):
    root = data_root(tmp_path, "howto100m", "laion")
    (root / "MSR-VTT").mkdir()  # as some mirrors unpack it
    (root / "msvd_videos").mkdir()  # not near enough to msrvtt: no suggestion from it
    with pytest.raises(DataError) as err:
        check_data(plan(root, only=["asr"]))
    assert str(err.value).endswith(
        f"no folder {root / 'msrvtt'}, read by asr,seed=0/finetune, asr,seed=0/evaluate, "
        f"asr,seed=1/finetune and 3 more: put the dataset there in its layout "
        f"(fcap/data/README.md), or leave those runs out (--only / --stages); did you mean "
        f"{root / 'MSR-VTT'}? (link or rename it to msrvtt, or set those keys to it)")
    (root / "MSR-VTT").rename(root / "msrvtt")
    (root / "msrvtt" / "videos" / "All").mkdir(parents=True)
    (root / "msrvtt" / "train_val_videoDatainfo.json").write_text("{}")
    with pytest.raises(DataError) as err:
        check_data(plan(root, only=["asr"]))
    assert f"did you mean {root / 'msrvtt' / 'train_val_videoDatainfo.json'}? (link or " in str(err.value)
    assert f"did you mean {root / 'msrvtt' / 'videos' / 'All'}? (link or rename it to all," in str(err.value)
    (root / "msrvtt" / "videos" / "All").rmdir()
    with pytest.raises(DataError) as err:
        check_data(plan(root, only=["asr"]))
    assert str(err.value).count("did you mean") == 1  # nothing near videos/all


def test_the_label_stages_videos_and_a_source_root_in_one_problem(tmp_path, monkeypatch):
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
    # ~ is the user's home, as the label stage reads it (it was "no folder ~/... in the
    # working folder", refusing a folder that is there)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    check_data(plan(root, "stages.label.videos=~/elsewhere", only=["pseudolabels"], stages=["label"]))


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
            f"absolute path; or try the experiment on the tiny profile's generated world: "
            f"--profile tiny), read by default/label") in str(err.value)
    check_data(build_plan(exp, profile="tiny"))  # what that says works
    with pytest.raises(DataError) as err:  # a profile chosen: no such hint
        check_data(build_plan(exp, profile="paper"))
    assert "--profile tiny" not in str(err.value)
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
    (root / "msrvtt" / "train_val_videodatainfo.json").write_text(MSRVTT_INFO)
    check_data(plan(root, only=["pseudolabels"], seeds=1))


def test_an_annotation_file_that_cannot_be_read_is_named_before_anything_runs(tmp_path):
    """A truncated MSR-VTT info file failed fine-tuning after a day of pretraining."""
    root = data_root(tmp_path, "howto100m", "laion", "msrvtt")
    info = root / "msrvtt" / "train_val_videodatainfo.json"
    info.write_text(MSRVTT_INFO[:40])
    with pytest.raises(DataError) as err:
        check_data(plan(root, only=["asr"], seeds=1))
    text = str(err.value)
    assert text.startswith(f"missing or unreadable data for {TABLE1}: 1 problem")  # both splits
    assert (f"stages.finetune.data, stages.evaluate.data: annotation file {info}: not valid "
            "JSON (") in text
    assert ("read by asr,seed=0/finetune, asr,seed=0/evaluate: fix the file (its layout: "
            "fcap/data/README.md), or leave those runs out (--only / --stages)") in text
    check_data(plan(root, only=["asr"], stages=["pretrain"], seeds=1))  # not read by pretraining
    # valid JSON, but the val split has no sentences: what fine-tuning's reader says, now
    info.write_text(json.dumps({"videos": [{"video_id": "video1", "split": "validate"}],
                                "sentences": []}))
    with pytest.raises(DataError, match=re.escape(
            f"stages.evaluate.data: annotation file {info}: 1 val video(s) have no sentences "
            "(first: video1)")):
        check_data(plan(root, only=["asr"], stages=["evaluate"], seeds=1))


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
    assert (f"no folder {Path('~/no-tsf').expanduser()} (a model checkpoint, as save_pretrained "
            "writes it; or give a hub id org/name; the paper's TimeSformer (divST 96x32 224, "
            "HowTo100M) is on no hub: convert the original TimeSformer_divST_96x32_224_HowTo100M"
            ".pyth (facebookresearch/TimeSformer) with python -m fcap.models.convert_timesformer "
            "SRC.pyth DIR and give DIR)") in text
    with pytest.raises(DataError) as err:
        check_data(plan(root, "stages.label.captioner.source=./blip", stages=["label"]))
    assert f"stages.label.captioner.source: no folder {Path.cwd() / 'blip'} (" in str(err.value)
    # the paper's encoder as downloaded: the original checkpoint file, not yet converted
    pyth = tmp_path / "TimeSformer_divST_96x32_224_HowTo100M.pyth"
    pyth.write_bytes(b"")
    with pytest.raises(DataError) as err:
        check_data(plan(root, f"model.visual.source={pyth}", only=["asr"], seeds=1))
    assert (f"no folder {pyth} (a file: an original TimeSformer checkpoint is converted first, "
            f"python -m fcap.models.convert_timesformer {pyth} OUT_DIR, then give OUT_DIR), read "
            f"by asr,seed=0/pretrain") in str(err.value)
    (tmp_path / "opt.bin").write_bytes(b"")
    with pytest.raises(DataError, match=r"no folder \S+opt.bin \(a file: give the folder "
                                        r"save_pretrained writes \(config.json and the weights\)"):
        check_data(plan(root, f"model.lm.source={tmp_path / 'opt.bin'}", only=["asr"], seeds=1))
    # hub ids (the paper profile's defaults) and existing folders pass
    (tmp_path / "opt").mkdir()
    check_data(plan(root, f"model.lm.source={tmp_path / 'opt'}", only=["asr"], seeds=1))


def test_a_hub_id_that_cannot_load_is_refused_one_to_download_is_a_note(tmp_path, hub_cache,
                                                                          monkeypatch, capsys):
    from huggingface_hub import constants
    from hf_cache import put_in_hub_cache

    root = data_root(tmp_path, "howto100m", "laion", "msrvtt")
    typo = plan(root, "model.lm.source=facebook/opt-1.3B", "stages.label.captioner.source=x/blip",
                only=["pseudolabels"], seeds=1)
    with pytest.raises(DataError) as err:  # offline (tests/conftest.py): the cache decides
        check_data(typo)
    text = str(err.value)
    assert text.startswith(f"missing data for {TABLE1}: 2 problems")
    assert (f"stages.label.captioner.source: no folder {Path.cwd() / 'x' / 'blip'}, and x/blip is "
            f"not in the Hugging Face cache ({hub_cache}) with HF_HUB_OFFLINE set: download it "
            f"where there is network, into the same cache (hf download x/blip), or give a local "
            f"folder; read by all_variants/label") in text
    assert ("stages.pretrain.model.lm.source, stages.finetune.model.lm.source, "
            "stages.evaluate.model.lm.source: no folder ") in text
    assert "read by pseudolabels,seed=0/pretrain, pseudolabels,seed=0/finetune, " in text
    put_in_hub_cache(hub_cache, "facebook/opt-1.3B", {})
    put_in_hub_cache(hub_cache, "x/blip", {})
    assert check_data(typo) == []
    # online: one the hub has is downloaded by the stage that loads it, said before anything runs
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.HfApi.model_info", lambda self, *a, **kw: None)
    on_hub = plan(root, "model.lm.source=facebook/opt-2.7b", only=["asr"], seeds=1)
    assert main([str(TABLE1), "--profile", "paper", f"datasets.root={root}", "--only", "asr",
                 f"model.visual.source={tmp_path / 'ckpt' / 'tsf'}", "--seeds", "1",
                 "model.lm.source=facebook/opt-2.7b", "--launcher", "local",
                 "train.precision=fp32", f"output_root={tmp_path / 'runs'}", "--dry-run"]) == 0
    assert check_data(on_hub) == [
        f"stages.pretrain.model.lm.source, stages.finetune.model.lm.source, "
        f"stages.evaluate.model.lm.source: facebook/opt-2.7b is not in the Hugging Face cache "
        f"({hub_cache}): the first stage that loads it downloads it (compute nodes without "
        f"network: run hf download facebook/opt-2.7b first)"]
    assert f"fcap: {check_data(on_hub)[0]}\n" in capsys.readouterr().out


def test_adapters_past_the_lms_last_layer_are_refused_before_anything_runs(tmp_path, in_tmp,
                                                                          hub_cache, capsys):
    from fcap.config.schema import build_component
    from hf_cache import put_in_hub_cache
    from registry import MODELS

    with pytest.raises(ConfigError) as err:  # the tiny profile's LM: 4 layers
        check_models(build_plan(TABLE1, overrides=["model.adapters.layers=[1,3,30]"], seeds=1))
    assert str(err.value) == (
        f"invalid model for {TABLE1}: 1 problem\n  - {TABLE1}: stages.pretrain.model.adapters."
        f"layers, stages.finetune.model.adapters.layers, stages.evaluate.model.adapters.layers, "
        f"stages.shuffled_frames.model.adapters.layers: [1, 3, 30] goes past the LM's last "
        f"layer: 'tiny-pretrained' has 4 layers (0..3); read by asr,seed=0/pretrain, "
        f"asr,seed=0/finetune, asr,seed=0/evaluate and 10 more")
    check_models(build_plan(TABLE1, overrides=["model.adapters.layers=[0,3]"], seeds=1))
    # the paper's adapters (12..22) on a smaller LM: a saved folder, and a downloaded hub id
    root = data_root(tmp_path, "howto100m", "laion", "msrvtt")
    folder = build_component(MODELS, {"name": "opt", "source": "tiny"}).build().model.name_or_path
    with pytest.raises(ConfigError, match=re.escape(
            f"[12, 14, 16, 18, 20, 22] goes past the LM's last layer: {folder!r} has 4 layers")):
        check_models(plan(root, f"model.lm.source={folder}"))
    put_in_hub_cache(hub_cache, "fcap-test/opt-125m", {
        "config.json": {"model_type": "opt", "num_hidden_layers": 12, "hidden_size": 768}})
    assert main([str(TABLE1), "--profile", "paper", f"datasets.root={root}", "--launcher",
                 "local", f"model.visual.source={tmp_path / 'ckpt' / 'tsf'}", "--dry-run",
                 "model.lm.source=fcap-test/opt-125m", f"output_root={tmp_path / 'runs'}"]) == 2
    assert ("goes past the LM's last layer: 'fcap-test/opt-125m' has 12 layers (0..11); read by "
            "asr,seed=0/pretrain,") in capsys.readouterr().err
    check_models(plan(root, "model.lm.source=fcap-test/opt-125m", "model.adapters.layers=[5,11]"))
    check_models(plan(root))  # facebook/opt-1.3b: its config not at hand, checked when it loads


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


def test_a_precision_this_machines_accelerator_lacks_is_refused_before_anything_runs(
        tmp_path, in_tmp, capsys):
    """The paper profile trains in fp16; on a CPU machine DeepSpeed said "Type fp16 is not
    supported on your device" when pretraining started, after the label stage."""
    from deepspeed.accelerator import get_accelerator

    from fcap.experiment.preflight import check_precision

    assert not get_accelerator().is_fp16_supported()  # this test machine: DS_ACCELERATOR=cpu
    root = data_root(tmp_path, "howto100m", "laion", "msrvtt")
    with pytest.raises(ConfigError) as err:
        check_precision(plan(root, only=["laion"], seeds=1))
    assert str(err.value) == (
        f"unsupported precision for {TABLE1}: 1 problem\n  - {TABLE1}: stages.pretrain.train."
        f"precision, stages.finetune.train.precision: fp16 training is not supported by this "
        f"machine's DeepSpeed accelerator (cpu), read by laion,seed=0/pretrain, "
        f"laion,seed=0/finetune: train.precision=fp32 or bf16, or run it where a GPU is "
        f"(--launcher slurm)")
    check_precision(plan(root, "train.precision=bf16", only=["laion"], seeds=1))  # the CPU has it
    check_precision(build_plan(TABLE1))  # the tiny profile: fp32
    assert main([str(TABLE1), "--profile", "paper", f"datasets.root={root}", "--launcher", "local",
                 f"model.visual.source={tmp_path / 'ckpt' / 'tsf'}", "--dry-run",
                 f"output_root={tmp_path / 'runs'}"]) == 2
    assert "fp16 training is not supported" in capsys.readouterr().err
    # the cluster's compute nodes are not this machine: submitting is not refused
    gpus = tmp_path / "gpus.yaml"
    gpus.write_text("partition: gpu\nmax_nodes: 2\ngpus_per_node: 8\ncpus_per_node: 80\n")
    assert main([str(TABLE1), "--profile", "paper", f"datasets.root={root}", "--dry-run",
                 f"model.visual.source={tmp_path / 'ckpt' / 'tsf'}", "--launcher", "slurm",
                 f"launcher.profile={gpus}", f"output_root={tmp_path / 'runs'}"]) == 0
