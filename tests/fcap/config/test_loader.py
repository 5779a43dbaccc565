from pathlib import Path

import pytest

from fcap.config import ConfigError
from fcap.config.loader import deep_merge, load_with_bases, parse_override

FIX = Path(__file__).parents[2] / "fixtures" / "configs"


def test_base_chain_merges_deepest_first_and_records_origins():
    data, origins = load_with_bases(FIX / "chain_c.yaml")
    assert data["name"] == "chained"
    assert data["optimizer"] == {"name": "toy_sgd", "lr": 0.5, "momentum": 0.9}
    assert data["stages"]["first"] == {"task": "toy_write", "value": 7, "scale": 2.0}
    assert origins("stages.first.value").endswith("chain_c.yaml")
    assert origins("stages.first.scale").endswith("chain_b.yaml")
    assert origins("optimizer.momentum").endswith("chain_a.yaml")


def test_base_cycle_is_reported_with_the_chain():
    with pytest.raises(ConfigError) as err:
        load_with_bases(FIX / "cycle_a.yaml")
    msg = str(err.value)
    assert "base cycle:" in msg
    assert "cycle_a.yaml -> " in msg and "cycle_b.yaml -> " in msg


def test_missing_base_and_bad_yaml(tmp_path):
    (tmp_path / "a.yaml").write_text("base: nope.yaml\nname: x\n")
    with pytest.raises(ConfigError, match="base: base file not found: .*nope.yaml"):
        load_with_bases(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="b.yaml: \\(top level\\): invalid YAML"):
        load_with_bases(tmp_path / "b.yaml")
    (tmp_path / "c.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, got list"):
        load_with_bases(tmp_path / "c.yaml")


def test_component_name_change_replaces_the_block():
    under = {"gate": {"name": "scalar", "init": 0.0, "extra": 1}, "x": 1}
    assert deep_merge(under, {"gate": {"name": "vector"}}) == {"gate": {"name": "vector"}, "x": 1}
    assert deep_merge(under, {"gate": {"init": 1.0}})["gate"] == {"name": "scalar", "init": 1.0,
                                                                  "extra": 1}


@pytest.mark.parametrize("text,value", [
    ("a.b=3", 3), ("a.b=0.5", 0.5), ("a.b=1e-3", "1e-3"), ("a.b=true", True),
    ("a.b=[1, 2]", [1, 2]), ("a.b=null", None), ("a.b=hello", "hello"), ("a.b='3'", "3"),
    ("a.b={x: 1}", {"x": 1}),
])
def test_override_values_are_yaml(text, value):
    assert parse_override(text) == ("a.b", value)


def test_override_without_equals_is_rejected():
    with pytest.raises(ConfigError, match="an override must look like key.sub=value"):
        parse_override("a.b")
