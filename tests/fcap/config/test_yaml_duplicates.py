"""A key written twice in one YAML mapping is a config error, never a silent last-wins."""
from pathlib import Path

import pytest

from fcap.config import ConfigError
from fcap.config.loader import load_with_bases, parse_override
from fcap.experiment import build_plan
from fcap.launchers.slurm_profile import load_profile

TOY = Path(__file__).parents[2] / "fixtures" / "plugins" / "toy_tasks.py"
EXPERIMENT = f"""\
name: dup
plugins: [{TOY}]
stages:
  s:
    task: toy_write
    value: 2
    value: 3
seed: 1
seed: 2
"""


def test_duplicates_name_file_line_and_dotted_key_all_at_once(tmp_path, in_tmp):
    path = tmp_path / "dup.yaml"
    path.write_text(EXPERIMENT)
    with pytest.raises(ConfigError) as err:
        build_plan(path)
    text = str(err.value)
    assert "2 problems" in text
    assert (f"{path}: stages.s.value: line 7: duplicate key 'value' (first set on line 6)") in text
    assert f"{path}: seed: line 9: duplicate key 'seed' (first set on line 8)" in text


def test_duplicates_across_a_base_chain_are_reported_together(tmp_path):
    (tmp_path / "base.yaml").write_text("optimizer: {name: toy_sgd, lr: 0.1, lr: 0.2}\n")
    (tmp_path / "top.yaml").write_text("base: base.yaml\nname: a\nname: b\n")
    with pytest.raises(ConfigError) as err:
        load_with_bases(tmp_path / "top.yaml")
    text = str(err.value)
    assert f"{tmp_path / 'base.yaml'}: optimizer.lr: line 1: duplicate key 'lr'" in text
    assert f"{tmp_path / 'top.yaml'}: name: line 3: duplicate key 'name'" in text


def test_a_caller_can_collect_them_with_its_own_problems(tmp_path):
    (tmp_path / "a.yaml").write_text("x: 1\ny: {z: 1, z: 2}\n")
    problems = []
    data, _ = load_with_bases(tmp_path / "a.yaml", problems=problems)
    assert data == {"x": 1, "y": {"z": 2}}
    assert [(p.key, p.message.split(":")[0]) for p in problems] == [("y.z", "line 2")]


def test_merge_keys_and_equal_values_of_other_types(tmp_path):
    # '<<: *anchor' then an override is how YAML merges are meant to be used: not a duplicate;
    # 1 and true are the same dict key in Python, so they are one.
    (tmp_path / "a.yaml").write_text(
        "defaults: &d {lr: 0.1, steps: 5}\nopt:\n  <<: *d\n  lr: 0.2\nflags: {1: a, true: b}\n")
    with pytest.raises(ConfigError) as err:
        load_with_bases(tmp_path / "a.yaml")
    text = str(err.value)
    assert "1 problem" in text
    assert "flags.true: line 5: duplicate key 'true' (first set on line 5 as '1')" in text


def test_experiment_profile_duplicates(tmp_path, in_tmp):
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: p\nplugins: [{TOY}]\nstages: {{s: {{task: toy_write}}}}\n")
    profile = tmp_path / "prof.yaml"
    profile.write_text("seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=f"{profile}: seed: line 2: duplicate key 'seed'"):
        build_plan(exp, profile=str(profile))


def test_cluster_profile_duplicates(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text("partition: gpu\nmax_nodes: 2\npartition: debug\n")
    with pytest.raises(ConfigError, match=f"{path}: partition: line 3: duplicate key 'partition'"):
        load_profile(str(path))


def test_override_value_duplicates():
    with pytest.raises(ConfigError, match="command line: stages.s.opts.x: line 1: duplicate key"):
        parse_override("stages.s.opts={x: 1, y: 2, x: 3}")
