"""Experiment, variant and stage names keep to a shell- and path-safe charset, checked at load."""
import re

import pytest
import yaml

from fcap.config import ConfigError
from fcap.experiment import build_plan

# Each would break a generated sbatch script or a run directory if it got through.
HOSTILE = ["two\nlines", "a;touch pwned", "$(touch pwned)", "`touch pwned`", "it's", 'say "hi"',
           "a b", "a/b", "..", "-rf", ""]
ALLOWED = "letters, digits, '_', '.' and '-', starting with a letter, digit or '_'"


def write(tmp_path, fix, **doc):
    doc = {"name": "ok", "plugins": [str(fix / "plugins" / "toy_tasks.py")],
           "stages": {"s": {"task": "toy_write"}}, **doc}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def problem(path, *, key, message) -> str:
    """build_plan's error text for ``path``, asserting it names the file, key and charset."""
    with pytest.raises(ConfigError) as err:
        build_plan(path)
    text = str(err.value)
    shown = key.replace("\n", "\\n")  # a newline in a key is printed escaped
    assert f"{path}: {shown}: " in text, text
    assert all(line.startswith("  - ") for line in text.splitlines()[1:]), text  # one a line
    assert re.search(rf"{re.escape(shown)}: .*{re.escape(message)}", text), text
    assert ALLOWED in text, text
    return text


@pytest.mark.parametrize("bad", HOSTILE)
def test_experiment_name_outside_the_charset_is_refused(tmp_path, fix, in_tmp, bad):
    problem(write(tmp_path, fix, name=bad), key="name", message="name must be")


@pytest.mark.parametrize("bad", HOSTILE)
def test_variant_name_outside_the_charset_is_refused(tmp_path, fix, in_tmp, bad):
    path = write(tmp_path, fix, variants={"good": {}, bad: {"stages.s.value": 2}})
    problem(path, key=f"variants.{bad}", message="a variant name must be")


@pytest.mark.parametrize("bad", HOSTILE)
def test_stage_name_outside_the_charset_is_refused(tmp_path, fix, in_tmp, bad):
    path = write(tmp_path, fix, stages={"s": {"task": "toy_write"}, bad: {"task": "toy_write"}})
    problem(path, key=f"stages.{bad}", message="a stage name must be")


def test_variant_key_of_a_resolved_config_is_checked_too(tmp_path, fix, in_tmp):
    problem(write(tmp_path, fix, variant="x\ntouch pwned"), key="variant",
            message="a variant name must be")
    # what fcap itself writes there (a grid name) still loads
    assert build_plan(write(tmp_path, fix, variant="lr=0.1,flag=True")).variants() == \
        ["lr=0.1,flag=True"]


def test_output_root_with_a_line_break_is_refused(tmp_path, fix, in_tmp):
    with pytest.raises(ConfigError) as err:
        build_plan(write(tmp_path, fix, output_root="runs\ntouch pwned"))
    text = str(err.value)
    assert f"{tmp_path / 'exp.yaml'}: output_root: " in text and "control characters" in text


def test_grid_values_become_safe_distinct_names(tmp_path, fix, in_tmp):
    values = ["a b", "a;b", "$(touch pwned)", "x\n`y`", "it's", "/data/set"]
    plan = build_plan(write(tmp_path, fix, grid={"stages.s.note": values}))
    names = plan.variants()
    assert len(set(names)) == len(values)
    assert all(re.fullmatch(r"note=[A-Za-z0-9_.-]+", n) for n in names), names
    # a variant still gets its own value, not a sanitised one
    assert [plan.get(n, "s").cfg.note for n in names] == values
