"""A command-line override of a shared block that stages hide is reported, never silent."""
import pytest

from fcap.config import ConfigError
from fcap.experiment import build_plan

EXPERIMENT = """
name: toy
plugins: [{plugin}]
optimizer: {{name: toy_sgd, lr: 0.01}}
stages:
  first: {{task: toy_write, optimizer: {{name: toy_sgd, lr: 0.5, momentum: 0.9}}}}
  second: {{task: toy_write, init_from: first}}
variants:
  a: {{}}
  b: {{stages.second.optimizer.momentum: 0.5}}
"""


@pytest.fixture
def exp(tmp_path, fix):
    path = tmp_path / "toy.yaml"
    path.write_text(EXPERIMENT.format(plugin=fix / "plugins" / "toy_tasks.py"))
    return path


def lr(plan, variant, stage):
    return plan.get(variant, stage).cfg.optimizer.cfg.lr


def test_an_override_every_stage_hides_is_refused_naming_the_per_stage_key(exp, in_tmp):
    # first sets 0.9 and second 0.5 in variant b, but second in variant a takes the shared
    # block: the override reached a stage, and the plan says where it did not
    plan = build_plan(exp, overrides=["optimizer.momentum=0.1"])
    assert plan.get("a", "second").cfg.optimizer.cfg.momentum == 0.1
    assert plan.notes == ["command line optimizer.momentum: stage(s) first (0.9), second (0.5) "
                          "keep their own value (a stage's value wins over a shared block; "
                          "stages.first.optimizer.momentum=... changes it there)"]
    with pytest.raises(ConfigError) as err:
        build_plan(exp, overrides=["optimizer.momentum=0.1", "stages.second.optimizer.momentum=0.2"])
    assert ("command line: optimizer.momentum: reaches no stage: first (0.9), second (0.2) set "
            "their own optimizer.momentum, which wins over a shared block; set it per stage "
            "(stages.first.optimizer.momentum=...)") in str(err.value)


def test_an_override_that_reaches_every_stage_says_nothing(exp, in_tmp):
    plan = build_plan(exp, overrides=["optimizer.lr=0.2"])  # 'first' keeps 0.5: a note
    assert lr(plan, "a", "second") == 0.2 and lr(plan, "a", "first") == 0.5
    assert len(plan.notes) == 1 and plan.notes[0].startswith("command line optimizer.lr: stage(s) first")
    plan = build_plan(exp, overrides=["stages.first.value=3", "output_root=elsewhere"])
    assert plan.notes == []  # stage keys and the experiment's own keys are not shared blocks
