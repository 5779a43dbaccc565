"""The label stage reads the collection the caption stages read (fcap/experiment/label_inputs.py)."""
from pathlib import Path

import pytest

from fcap.config import ConfigError
from fcap.experiment import build_plan

ROOT = Path(__file__).resolve().parents[3]
TABLE1 = ROOT / "experiments" / "table1.yaml"
LABELS_ONLY = ROOT / "experiments" / "pseudolabel_howto100m.yaml"


def _data(tmp_path) -> Path:
    for name in ("howto100m", "laion", "msrvtt", "msvd"):
        (tmp_path / "data" / name).mkdir(parents=True)
    return tmp_path / "data"


def test_the_paper_table1_labels_the_videos_pretraining_reads(tmp_path, monkeypatch):
    from fcap.data import DataEnv

    monkeypatch.chdir(tmp_path)
    data = _data(tmp_path)
    plan = build_plan(TABLE1, profile="paper", overrides=[f"datasets.root={data}"])
    label = plan.get("all_variants", "label")
    pretrain = plan.get("pseudolabels,seed=0", "pretrain").cfg
    read = DataEnv(data_root=pretrain.datasets.root).resolve(pretrain.data.cfg.root)  # as the source does
    assert label.cfg.videos == str(data / "howto100m") == read
    # another data root is another collection: new labels
    other = tmp_path / "other"
    other.mkdir()
    moved = build_plan(TABLE1, profile="paper", overrides=[f"datasets.root={other}"])
    assert moved.get("all_variants", "label").config_hash != label.config_hash


def test_relative_videos_without_a_root_stay_relative_and_absolute_ones_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert build_plan(LABELS_ONLY).get("default", "label").cfg.videos == "howto100m"
    data = _data(tmp_path)
    rooted = build_plan(LABELS_ONLY, profile="paper", overrides=[f"datasets.root={data}"])
    assert rooted.get("default", "label").cfg.videos == str(data / "howto100m")
    mine = build_plan(LABELS_ONLY, profile="paper",
                      overrides=[f"datasets.root={data}", "stages.label.videos=/videos/mine"])
    assert mine.get("default", "label").cfg.videos == "/videos/mine"


def test_a_relative_data_root_is_the_working_folders_and_is_recorded_absolute(tmp_path,
                                                                              monkeypatch):
    data = _data(tmp_path)
    monkeypatch.chdir(tmp_path)
    plan = build_plan(TABLE1, profile="paper", overrides=["datasets.root=./data"])
    label = plan.get("all_variants", "label")
    pretrain = plan.get("asr,seed=0", "pretrain")
    assert pretrain.cfg.datasets.root == str(data)
    assert label.cfg.videos == str(data / "howto100m")
    # the same folder named absolutely is the same run; from another folder, another one
    same = build_plan(TABLE1, profile="paper", overrides=[f"datasets.root={data}"])
    assert same.get("all_variants", "label").config_hash == label.config_hash
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    _data(tmp_path / "elsewhere")
    moved = build_plan(TABLE1, profile="paper", overrides=["datasets.root=./data"])
    assert moved.get("all_variants", "label").config_hash != label.config_hash


def test_the_label_stage_labels_the_world_the_caption_stages_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = build_plan(TABLE1).get("all_variants", "label")
    moved = build_plan(TABLE1, overrides=["datasets.shapes_world.seed=1"])
    label = moved.get("all_variants", "label")
    evaluate = moved.get("laion,seed=0", "evaluate")
    assert label.cfg.shapes.world.seed == 1 == evaluate.cfg.datasets.shapes_world.seed
    assert label.config_hash != default.config_hash  # new labels for the new world's clips
    assert default.cfg.shapes.world.seed == 0
    # a world named on the label stage itself is kept
    own = build_plan(TABLE1, overrides=["datasets.shapes_world.seed=1",
                                        "stages.label.shapes.world.seed=2"])
    assert own.get("all_variants", "label").cfg.shapes.world.seed == 2


def test_tiny_models_on_a_data_root_label_that_root_or_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _data(tmp_path)
    real = ["datasets.shapes_world=null", f"datasets.root={data}"]
    with pytest.raises(ConfigError) as err:  # the profile's label stage is on the world
        build_plan(TABLE1, profile="tiny", overrides=real)
    assert ("stages.label.shapes: stage 'label' labels the shapes world, but the other stages "
            f"read datasets.root = '{data}'") in str(err.value)
    assert "stages.label.shapes=null stages.label.videos=howto100m" in str(err.value)
    plan = build_plan(TABLE1, profile="tiny",
                      overrides=[*real, "stages.label.shapes=null", "stages.label.videos=howto100m"])
    assert plan.get("all_variants", "label").cfg.videos == str(data / "howto100m")
    assert plan.get("asr,seed=0", "evaluate").cfg.datasets.root == str(data)


def test_labelling_alone_reads_datasets_root_and_refuses_it_beside_the_world(tmp_path, monkeypatch):
    """pseudolabel_howto100m.yaml: datasets.root (its comment's "under datasets.root if set")
    was an unknown top-level key without a profile; with --profile tiny it was accepted and the
    label stage labelled the shapes world instead of the root's videos."""
    monkeypatch.chdir(tmp_path)
    data = _data(tmp_path)
    plan = build_plan(LABELS_ONLY, overrides=[f"datasets.root={data}"])
    assert plan.get("default", "label").cfg.videos == str(data / "howto100m")
    with pytest.raises(ConfigError, match=r"datasets.num_workers: no stage of this experiment reads "
                                          r"it: its label stage\(s\) \(label\) read datasets.root "
                                          r"and datasets.shapes_world only"):
        build_plan(LABELS_ONLY, overrides=[f"datasets.root={data}", "datasets.num_workers=3"])
    with pytest.raises(ConfigError) as err:
        build_plan(LABELS_ONLY, profile="tiny", overrides=[f"datasets.root={data}"])
    assert (f"datasets.root: '{data}' is set together with shapes_world (the tiny profile's "
            "synthetic data): stage 'label' would label the shapes world, not the videos under "
            "datasets.root. To label those with this captioner: datasets.shapes_world=null "
            "stages.label.shapes=null stages.label.videos=howto100m; to label the shapes world "
            "drop datasets.root") in str(err.value)
    advised = ["datasets.shapes_world=null", "stages.label.shapes=null", "stages.label.videos=howto100m"]
    label = build_plan(LABELS_ONLY, profile="tiny",
                       overrides=[f"datasets.root={data}", *advised]).get("default", "label").cfg
    assert label.videos == str(data / "howto100m") and label.shapes is None
    assert label.captioner.cfg.source == "tiny-pretrained"  # the tiny profile's BLIP, as asked
