import re
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
    with pytest.raises(ConfigError, match="b.yaml: \\(top level\\): invalid YAML") as err:
        load_with_bases(tmp_path / "b.yaml")
    assert f'in "{tmp_path / "b.yaml"}", line 2' in str(err.value)  # not "<unicode string>"
    (tmp_path / "c.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, got list"):
        load_with_bases(tmp_path / "c.yaml")


def test_a_missing_file_names_the_closest_one_beside_it(tmp_path):
    (tmp_path / "table1.yaml").write_text("base: bsae.yaml\nname: x\n")
    (tmp_path / "base.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match=r"tabel1.yaml: \(top level\): cannot read config file: "
                                          r"No such file or directory; did you mean 'table1.yaml'\?"):
        load_with_bases(tmp_path / "tabel1.yaml")
    with pytest.raises(ConfigError, match=r"base file not found: .*bsae.yaml; did you mean "
                                          r"'base.yaml'\?"):
        load_with_bases(tmp_path / "table1.yaml")
    with pytest.raises(ConfigError, match=r"No such file or directory \(its folder .*experimnts does "
                                          r"not exist either\)$"):
        load_with_bases(tmp_path / "experimnts" / "table1.yaml")


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


def test_an_override_indexes_lists_and_names_itself_as_the_source():
    from fcap.config.loader import Origins, set_dotted

    doc = {"data": {"children": [{"p": 0.95}, {"p": 0.05, "source": {"name": "howto100m"}}]}}
    origins = Origins("f.yaml")
    origins.record(doc, "f.yaml")
    set_dotted(doc, "data.children[1].p", 0.2, source="command line", origins=origins)
    set_dotted(doc, "data.children[0]", {"p": 0.8}, source="command line", origins=origins)
    assert doc == {"data": {"children": [{"p": 0.8}, {"p": 0.2, "source": {"name": "howto100m"}}]}}
    assert origins("data.children[1].p") == "command line"
    assert origins("data.children[1].source.name") == "f.yaml"  # the item's other keys: the file's
    for key, message in [
        ("data.children[2].p", "'data.children[2]': the list has 2 item(s) (indices 0..1)"),
        ("data[0]", "'data[0]' indexes a list, but 'data' is dict"),
        ("data.none[0].p", "'data.none[0]' indexes a list, but 'data.none' is nothing"),
        ("data.children[x]", "bad list index in 'children[x]' (write children[0], children[1], ...)"),
        ("data..p", "an empty key part"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(f"command line: {key}: {message}")):
            set_dotted(doc, key, 1, source="command line", origins=origins)
