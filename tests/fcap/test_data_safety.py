"""A user's folder survives every fcap entry point that can touch it (issue 11, item 1).

Regression: ``fcap-run experiments/table1.yaml datasets.root=/data`` picked the tiny
profile and the shapes-world writer replaced /data/msrvtt, /data/laion, ... with
synthetic data.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fcap.config.errors import ConfigError
from fcap.experiment import build_plan
from fcap.io import OwnershipError

ROOT = Path(__file__).resolve().parents[2]
TABLE1 = ROOT / "experiments" / "table1.yaml"


@pytest.fixture
def user_data(tmp_path):
    """A datasets root holding a user's real-looking files (none written by fcap)."""
    root = tmp_path / "data"
    files = {"msrvtt/train_val_videodatainfo.json": b'{"videos": "mine"}',
             "msrvtt/videos/all/video0.mp4": b"\x00\x00\x00\x18ftypmp42 user video",
             "msvd/AllVideoDescriptions.txt": b"vid1 a person cooks\n",
             "howto100m/caption.json": b'{"vid": {"text": ["hello"]}}',
             "laion/00000.tar": b"user tar shard"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_datasets_root_on_the_command_line_means_real_data_not_the_tiny_profile(user_data):
    plan = build_plan(TABLE1, overrides=[f"datasets.root={user_data}"])
    assert plan.profile is None and not plan.notes
    pretrain = plan.get("asr,seed=0", "pretrain")
    assert pretrain.cfg.datasets.root == str(user_data)
    assert pretrain.cfg.datasets.shapes_world is None


def test_a_source_at_an_absolute_path_means_real_data_not_the_tiny_profile(user_data, tmp_path):
    """A user's own experiment naming /data/msrvtt and no datasets.root ran with the tiny
    profile's models and a tenth of its steps, said only on the first line."""
    exp = tmp_path / "mine.yaml"
    exp.write_text(f"""
name: mine
base: fcap://base/frozen_captioner.yaml
stages:
  finetune:
    task: caption_pretrain
    train: {{steps: 400}}
    data: {{name: msrvtt, root: {user_data / 'msrvtt'}, split: train}}
""")
    plan = build_plan(exp)
    assert plan.profile is None and not plan.notes
    cfg = plan.get("default", "finetune").cfg
    assert cfg.model.lm.cfg.source == "facebook/opt-1.3b" and cfg.train.total_steps == 400
    relative = exp.read_text().replace(str(user_data / "msrvtt"), "msrvtt")
    exp.write_text(relative)  # relative to a datasets.root nobody set: the tiny profile
    assert build_plan(exp).profile == "tiny"


def test_datasets_root_set_by_a_variant_also_means_real_data(user_data, tmp_path):
    import yaml

    exp = tmp_path / "exp" / "x.yaml"
    (tmp_path / "exp" / "profiles").mkdir(parents=True)
    (tmp_path / "exp" / "profiles" / "tiny.yaml").write_text(
        (ROOT / "experiments" / "profiles" / "tiny.yaml").read_text())
    doc = yaml.safe_load(TABLE1.read_text())
    doc["base"] = str(ROOT / "experiments" / "base" / "frozen_captioner.yaml")
    doc["variants"]["real"] = {"datasets.root": str(user_data)}
    exp.write_text(yaml.safe_dump(doc))
    # the label stage's relative videos: would follow that variant's root, and it runs once
    # for all variants: refused, not a silent mix of collections
    with pytest.raises(ConfigError, match=r"stages\.label\.once: stage 'label' runs once for all "
                                          r"variants .* variant 'real,seed=0' changes its config"):
        build_plan(exp)
    doc["stages"]["label"]["videos"] = str(tmp_path / "videos")  # one collection for all
    exp.write_text(yaml.safe_dump(doc))
    plan = build_plan(exp)
    assert plan.profile is None  # one variant names real data: no silent tiny profile
    assert plan.get("real,seed=0", "pretrain").cfg.datasets.root == str(user_data)


def test_without_any_root_the_tiny_world_is_generated_in_the_fcap_cache(fcap_cache):
    from fcap.tasks.datasets import data_root

    plan = build_plan(TABLE1)
    assert plan.profile == "tiny"
    root = data_root(plan.get("asr,seed=0", "pretrain").cfg.datasets)
    assert Path(root).is_relative_to(fcap_cache) and (Path(root) / ".fcap-owned").is_file()


def test_tiny_profile_with_a_datasets_root_is_a_config_error_naming_the_key(user_data):
    before = snapshot(user_data)
    with pytest.raises(ConfigError, match=r"datasets\.root.*shapes_world"):
        build_plan(TABLE1, profile="tiny", overrides=[f"datasets.root={user_data}"])
    assert snapshot(user_data) == before


def test_readme_command_with_datasets_root_leaves_the_users_files_untouched(user_data, tmp_path):
    """The reported command, through the CLI, with a stage that reads the datasets."""
    before = snapshot(user_data)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "fcap.cli", str(TABLE1), f"datasets.root={user_data}",
         f"output_root={tmp_path / 'runs'}", "--only", "laion", "--stages", "pretrain",
         "stages.pretrain.after=[]"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert "'tiny' profile" not in proc.stdout + proc.stderr
    assert proc.returncode != 0  # OPT-1.3B cannot be fetched offline: the real path was taken
    assert snapshot(user_data) == before


def test_missing_layout_under_datasets_root_names_the_folder_and_key(tmp_path):
    from fcap.data import DataEnv
    from fcap.data.errors import DataError
    from fcap.data.msrvtt import Msrvtt, MsrvttConfig

    (tmp_path / "data").mkdir()
    env = DataEnv(data_root=str(tmp_path / "data"))
    with pytest.raises(DataError, match=r"no folder .*data/msrvtt.*'root' = 'msrvtt'.*datasets\.root"):
        Msrvtt(MsrvttConfig(root="msrvtt"), env=env).root()


def test_a_relative_root_without_datasets_root_says_where_it_looked(tmp_path, monkeypatch):
    from fcap.data import DataEnv
    from fcap.data.errors import DataError
    from fcap.data.msrvtt import Msrvtt, MsrvttConfig

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"'root' = 'msrvtt' is relative and datasets\.root is not "
                                        rf"set, .* working folder {tmp_path}: not a directory"):
        Msrvtt(MsrvttConfig(root="msrvtt"), env=DataEnv()).root()


def test_shapes_world_with_an_explicit_root_refuses_a_users_folder(user_data):
    from fcap.data.shapes import ShapesWorldConfig, ensure_shapes_world

    before = snapshot(user_data)
    with pytest.raises(OwnershipError, match=str(user_data)):
        ensure_shapes_world(str(user_data), ShapesWorldConfig(msrvtt_videos=(1, 1, 1)))
    assert snapshot(user_data) == before


def test_shapes_data_source_root_refuses_a_users_folder(user_data):
    from fcap.data import DataEnv
    from fcap.data.shapes.source import Shapes, ShapesConfig

    before = snapshot(user_data)
    with pytest.raises(OwnershipError, match=r"root \(data source 'shapes'\)"):
        Shapes(ShapesConfig(root=str(user_data)), env=DataEnv())
    assert snapshot(user_data) == before


def test_regenerating_a_world_removes_only_marked_layout_folders(tmp_path):
    from fcap.data.shapes import ShapesWorldConfig, ensure_shapes_world

    small = ShapesWorldConfig(msrvtt_videos=(1, 1, 1), msvd_videos=(1, 1, 1), howto_videos=1,
                              laion_images=2, laion_shard_size=2)
    roots = ensure_shapes_world(str(tmp_path / "w"), small)
    mine = Path(roots["laion"])
    (mine / ".fcap-owned").unlink()  # as if a user had put their own laion/ there
    (mine / "mine.txt").write_text("user")
    with pytest.raises(OwnershipError, match="laion"):
        ensure_shapes_world(str(tmp_path / "w"), ShapesWorldConfig(**{**small.__dict__, "seed": 1}))
    assert (mine / "mine.txt").read_text() == "user"


def test_feature_cache_folder_with_a_users_files_is_refused(user_data):
    from fcap.data import LoaderSpec, extract_features

    target = user_data / "msrvtt"
    before = snapshot(user_data)
    spec = LoaderSpec(split="train", train=False, batch_size=2, num_workers=0, image_size=32,
                      mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), num_frames=2)
    with pytest.raises(OwnershipError, match=r"out_dir.*feature cache"):
        extract_features(object(), out_dir=str(target), encode=None, encoder={}, spec=spec)
    assert snapshot(user_data) == before


def test_export_adapters_will_not_replace_an_adapters_folder_fcap_did_not_write(tmp_path):
    from fcap.tasks.adapters import export_adapters

    class Model:
        def save_adapters(self, directory):
            (Path(directory) / "adapters.safetensors").write_bytes(b"new")

    (tmp_path / "adapters").mkdir()
    (tmp_path / "adapters" / "theirs.bin").write_bytes(b"user")
    with pytest.raises(OwnershipError, match="adapters"):
        export_adapters(Model(), tmp_path)
    assert (tmp_path / "adapters" / "theirs.bin").read_bytes() == b"user"
    (tmp_path / "adapters" / "theirs.bin").unlink()
    (tmp_path / "adapters").rmdir()
    first = export_adapters(Model(), tmp_path)  # fcap's own: replaced on the next export
    assert export_adapters(Model(), tmp_path) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapters"]
