"""Every YAML under experiments/ loads and validates, raw and under each profile."""
from pathlib import Path

import pytest

from fcap.config import ConfigError
from fcap.experiment import build_plan

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))
PAPER_FILES = {"table1", "table2", "gates", "gate_init", "beta2", "crop", "attention",
               "pseudolabel_howto100m"}


def test_every_paper_experiment_exists():
    assert {p.stem for p in EXPERIMENTS} >= PAPER_FILES


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_validates_raw_and_tiny(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = build_plan(path)
    assert plan.runs and all(r.config_hash for r in plan.runs)
    tiny = build_plan(path, profile="tiny")
    assert tiny.profile == "tiny"
    for run in tiny.runs:
        model = getattr(run.cfg, "model", None)
        if model is not None:  # tiny models only: no hub download can be attempted
            assert model.lm.cfg.source == "tiny-pretrained" == model.visual.cfg.source


def test_no_dataset_root_means_tiny_profile_said_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = build_plan(ROOT / "experiments" / "table1.yaml")
    assert plan.profile == "tiny"
    assert plan.notes[0].startswith("no dataset root configured (datasets.root is null in")
    assert "running the built-in 'tiny' profile" in plan.notes[0]
    assert [r.key for r in plan.runs][:2] == ["all_variants/label", "all_variants/merge"]
    assert plan.variants() == [f"{v},seed={k}" for v in ("asr", "pseudolabels", "laion",
                                                        "pseudolabels_laion") for k in range(3)]


def test_a_command_line_world_setting_tunes_the_automatic_tiny_profile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = build_plan(ROOT / "experiments" / "table1.yaml",
                      overrides=["datasets.shapes_world.msrvtt_videos=[10, 6, 6]"])
    assert plan.profile == "tiny" and plan.notes[0].startswith("no dataset root configured")
    cfg = plan.get("asr,seed=0", "evaluate").cfg
    assert cfg.datasets.shapes_world.msrvtt_videos == (10, 6, 6)
    assert cfg.model.lm.cfg.source == "tiny-pretrained"


def test_turning_the_world_off_without_a_root_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for profile in (None, "tiny"):
        with pytest.raises(ConfigError) as err:
            build_plan(ROOT / "experiments" / "table1.yaml", profile=profile,
                       overrides=["datasets.shapes_world=null"])
        assert "command line: datasets.shapes_world: null turns the shapes world off" in str(err.value)
        assert "datasets.root=/path/to/datasets" in str(err.value)
    # with a root it means "read the real layouts there" (tests/fcap/experiment/test_label_inputs.py)


def test_paper_profile_requires_existing_dataset_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        build_plan(ROOT / "experiments" / "table1.yaml", profile="paper")
    assert "datasets.root" in str(err.value) and "/path/to/datasets" in str(err.value)
    (tmp_path / "data").mkdir()
    plan = build_plan(ROOT / "experiments" / "table1.yaml", profile="paper",
                      overrides=[f"datasets.root={tmp_path / 'data'}"])
    assert plan.profile == "paper" and plan.header.launcher.name == "slurm"


def _howto_sources(cfg):
    """Every howto100m data source config inside a stage config (mixtures included)."""
    import dataclasses

    from fcap.config.schema import Component

    if isinstance(cfg, Component):
        if cfg.name == "howto100m":
            yield cfg.cfg
        cfg = cfg.cfg
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        for f in dataclasses.fields(cfg):
            yield from _howto_sources(getattr(cfg, f.name))
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            yield from _howto_sources(v)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_pseudolabels_are_read_from_a_merge_stage_never_a_conventional_path(path, tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = build_plan(path, profile="tiny")
    for run in plan.runs:
        for source in _howto_sources(run.cfg):
            if source.captions == "pseudolabel":
                assert source.pseudolabels and source.pseudolabels.endswith(
                    "/merge/pseudolabels.jsonl"), (run.key, source.pseudolabels)
                assert any(dep.task == "pseudolabel_merge" for _, dep in plan.dependencies(run))
