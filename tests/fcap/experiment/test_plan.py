from pathlib import Path

import pytest

from fcap.config import ConfigError
from fcap.experiment import build_plan


def test_three_mistakes_reported_together_with_files_and_keys(fix):
    with pytest.raises(ConfigError) as err:
        build_plan(fix / "configs" / "three_mistakes.yaml")
    msg = str(err.value)
    assert "3 problems" in msg
    assert ("three_mistakes.yaml: optimizer.name: no optimizer 'toy_sgdd' in registry "
            "'optimizer'; did you mean 'toy_sgd'?") in msg
    assert "three_mistakes.yaml: stages.first.valeu: unknown key 'valeu'; did you mean 'value'?" in msg
    assert "value=1" in msg  # allowed keys with defaults
    assert "three_mistakes.yaml: stages.first.scale: expected float, got str 'fast'" in msg


def test_variants_times_stages(fix, in_tmp):
    plan = build_plan(fix / "experiments" / "two_stage.yaml")
    assert [r.key for r in plan.runs] == ["a/first", "a/second", "b/first", "b/second"]
    second = plan.get("b", "second")
    assert second.deps == ("first",) and second.init_from == "first"
    assert plan.get("b", "first").cfg.value == 10 and plan.get("a", "first").cfg.value == 2
    assert second.run_dir == in_tmp / "runs" / "toy" / "b" / "second"
    # shared top-level block reaches every stage whose task has the field
    assert second.cfg.optimizer.cfg.lr == 0.01


def test_grid_is_cartesian_with_readable_names(fix, in_tmp, tmp_path):
    exp = tmp_path / "grid.yaml"
    exp.write_text(f"""
name: g
plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
stages: {{s: {{task: toy_write}}}}
grid:
  optimizer.lr: [0.001, 0.007]
  stages.s.model.gate: [null]
  stages.s.flag: [true, false]
""")
    plan = build_plan(exp)
    names = plan.variants()
    assert names == ["lr=0.001,gate=None,flag=True", "lr=0.001,gate=None,flag=False",
                     "lr=0.007,gate=None,flag=True", "lr=0.007,gate=None,flag=False"]
    run = plan.get("lr=0.007,gate=None,flag=False", "s")
    assert run.cfg.optimizer.cfg.lr == 0.007 and run.cfg.flag is False


def test_override_types_and_unknown_override_key(fix, in_tmp):
    exp = fix / "experiments" / "two_stage.yaml"
    plan = build_plan(exp, overrides=["stages.first.value=4", "stages.first.scale=0.25",
                                      "stages.first.flag=true", "stages.first.tags=[x, y]",
                                      "stages.first.note=null", "stages.second.note=hello"])
    cfg = plan.get("a", "first").cfg
    assert (cfg.value, cfg.scale, cfg.flag, cfg.tags, cfg.note) == (4, 0.25, True, ("x", "y"), None)
    assert plan.get("a", "second").cfg.note == "hello"
    with pytest.raises(ConfigError) as err:
        build_plan(exp, overrides=["stages.first.vlaue=4", "optimizer.lrr=1"])
    msg = str(err.value)
    assert "command line: stages.first.vlaue: unknown key 'vlaue'; did you mean 'value'?" in msg
    assert "command line: optimizer.lrr: unknown key 'lrr'; did you mean 'lr'?" in msg
    with pytest.raises(ConfigError, match="command line: stages.first.value: expected int, got str"):
        build_plan(exp, overrides=["stages.first.value=abc"])


def test_a_flag_written_as_an_override_names_the_flag(fix, in_tmp):
    """profile=paper read as a config key: "unknown top-level key 'profile' (...); allowed:
    adapters, asr, ..." (70 keys)."""
    exp = fix / "experiments" / "two_stage.yaml"
    with pytest.raises(ConfigError) as err:
        build_plan(exp, overrides=["profile=paper", "only=a", "force=true"])
    assert [str(p) for p in err.value.problems] == [
        "command line: profile: a flag of fcap-run, not a config key: write --profile paper",
        "command line: only: a flag of fcap-run, not a config key: write --only a",
        "command line: force: a flag of fcap-run, not a config key: write --force"]
    # said once, not again for the experiment it reads from (gates.yaml reads table1.yaml's)
    gates = Path(__file__).resolve().parents[3] / "experiments" / "gates.yaml"
    with pytest.raises(ConfigError) as err:
        build_plan(gates, overrides=["profile=paper", "grid.optimizer.lr=[0.001]"])
    assert sorted(p.key for p in err.value.problems) == ["grid.optimizer.lr", "profile"]


def test_unknown_top_level_key_stage_and_dependency(tmp_path, fix):
    exp = tmp_path / "bad.yaml"
    exp.write_text(f"""
name: bad
plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
optimiser: {{lr: 1}}
zzzq: 1
stages:
  a: {{task: toy_writ}}
  b: {{task: toy_write, init_from: aa}}
  c: {{value: 1}}
""")
    with pytest.raises(ConfigError) as err:
        build_plan(exp)
    msg = str(err.value)
    assert "optimiser: unknown top-level key 'optimiser'; did you mean 'optimizer'?" in msg
    assert "zzzq: unknown top-level key 'zzzq' (it is not an experiment key and no stage's " in msg
    assert "stages.a.task: no task 'toy_writ' in registry 'task'; did you mean 'toy_write'?" in msg
    assert "stages.b.init_from: no stage 'aa'; did you mean 'a'?" in msg
    assert "stages.c.task: missing required key 'task'" in msg


def test_a_fine_tuning_stage_with_nothing_to_start_from_is_refused_before_it_runs(tmp_path):
    exp = tmp_path / "ft.yaml"
    exp.write_text("""
name: ft
stages:
  finetune: {task: caption_finetune, data: {name: msrvtt, root: msrvtt}}
""")
    with pytest.raises(ConfigError, match="stages.finetune: task 'caption_finetune' starts from "
                                          "trained adapters: give the stage 'init_from: STAGE'"):
        build_plan(exp)
    given = build_plan(exp, overrides=["stages.finetune.adapters=/old/adapters"])
    assert given.get("default", "finetune").cfg.adapters == "/old/adapters"


def test_dependency_cycle(tmp_path, fix):
    exp = tmp_path / "cyc.yaml"
    exp.write_text(f"""
name: cyc
plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
stages:
  a: {{task: toy_write, after: [b]}}
  b: {{task: toy_write, init_from: a}}
""")
    with pytest.raises(ConfigError, match="stage dependency cycle: a -> b -> a"):
        build_plan(exp)


def test_selection_flags(fix, in_tmp):
    exp = fix / "experiments" / "two_stage.yaml"
    plan = build_plan(exp, only=["b"], stages=["second"])
    assert [r.key for r in plan.selected] == ["b/second"] and len(plan.runs) == 4
    with pytest.raises(ConfigError, match="no such variant 'c'"):
        build_plan(exp, only=["c"])
    with pytest.raises(ConfigError, match="no such stage 'secnd'; did you mean 'second'"):
        build_plan(exp, stages=["secnd"])


def test_only_takes_the_names_with_commas_that_it_lists(in_tmp, capsys, monkeypatch):
    """A seed's variant (asr,seed=0) and a grid's (name=scalar,lr=0.001) are chosen by the
    name the error lists, also among others: --only splits at commas, then joins back."""
    from fcap.cli import main
    from fcap.run_flags import split_names

    root = Path(__file__).resolve().parents[3] / "experiments"
    chosen = lambda exp, *only: sorted({r.variant for r in build_plan(  # noqa: E731
        root / exp, only=split_names(list(only)), seeds=2).selected} - {"all_variants"})
    assert chosen("table1.yaml", "asr,seed=1") == ["asr,seed=1"]
    assert chosen("table1.yaml", "laion,seed=0,asr") == ["asr,seed=0", "asr,seed=1", "laion,seed=0"]
    assert chosen("table1.yaml", "asr,seed=0", "asr,seed=1") == ["asr,seed=0", "asr,seed=1"]
    assert chosen("gates.yaml", "name=scalar,lr=0.001,name=vector,lr=0.007") == [
        "name=scalar,lr=0.001,seed=0", "name=scalar,lr=0.001,seed=1",
        "name=vector,lr=0.007,seed=0", "name=vector,lr=0.007,seed=1"]
    with pytest.raises(ConfigError) as err:
        chosen("table1.yaml", "asr,seed=0,seed=9")
    assert ("no such variant 'seed=9'; did you mean 'asr,seed=1'? known: asr,seed=0; asr,seed=1; "
            "pseudolabels,seed=0;") in str(err.value)
    from fcap.launchers.local import LocalLauncher

    seen, real_launch = {}, LocalLauncher.launch  # the plan fcap-run hands the launcher
    monkeypatch.setattr(LocalLauncher, "launch", lambda self, plan, **kw: (
        seen.setdefault("then", plan.then("status")), real_launch(self, plan, **kw))[1])
    assert main([str(root / "table1.yaml"), "--only", "asr,seed=1", "--dry-run", "-q",
                 "output_root=my runs", "--seeds", "2"]) == 0
    assert seen["then"] == (f"fcap-run status {root / 'table1.yaml'} 'output_root=my runs' "
                            f"--seeds 2 --only asr,seed=1")
    out = capsys.readouterr().out
    assert "=== asr,seed=1/pretrain " in out and "=== asr,seed=0/" not in out


def test_only_runs_the_once_stages_its_variants_read(tmp_path, fix, in_tmp):
    # Table 1's shape: labels made once, read by some variants only (asr and laion do not)
    exp = tmp_path / "once.yaml"
    exp.write_text(f"""
name: toy
plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
stages:
  label: {{task: toy_write, value: 100, once: true}}
  merge: {{task: toy_write, init_from: label, value: 1, once: true}}
  use: {{task: toy_write, init_from: merge, value: 1}}
variants:
  labels: {{}}
  own: {{stages.use: {{task: toy_write, value: 2}}}}
""")
    keys = lambda **kw: [r.key for r in build_plan(exp, **kw).selected]  # noqa: E731
    assert keys() == ["all_variants/label", "all_variants/merge", "labels/use", "own/use"]
    assert keys(only=["own"]) == ["own/use"]
    assert keys(only=["labels"]) == ["all_variants/label", "all_variants/merge", "labels/use"]
    assert keys(only=["labels"], stages=["use"]) == ["labels/use"]
    with pytest.raises(ConfigError, match="--stages: selects no run of variant.s. own: their "
                                          "stages are use .once-stages label, merge are not "
                                          "read by them: select those with --stages alone.$"):
        keys(only=["own"], stages=["label"])
    assert keys(stages=["label"]) == ["all_variants/label"]


def test_an_array_stage_has_one_element_per_shard(tmp_path):
    table1 = Path(__file__).resolve().parents[3] / "experiments" / "table1.yaml"
    line = [f"datasets.root={tmp_path}"]
    with pytest.raises(ConfigError) as err:
        build_plan(table1, profile="paper", overrides=[*line, "stages.label.num_shards=2"])
    assert ("table1.yaml: stages.label.resources.array: 64 array elements for 2 shards "
            "(stages.label.num_shards): one element labels one shard; set both to the same "
            "number") in str(err.value)
    plan = build_plan(table1, profile="paper", overrides=[
        *line, "stages.label.num_shards=2", "stages.label.resources.array=2"])
    assert plan.get("all_variants", "label").resources.array == 2
    # no array: one job labels every shard in turn
    plan = build_plan(table1, profile="paper", overrides=[
        *line, "stages.label.num_shards=2", "stages.label.resources.array=null"])
    assert plan.get("all_variants", "label").resources.array is None


def test_a_mixture_child_is_overridden_by_index(in_tmp):
    attention = Path(__file__).resolve().parents[3] / "experiments" / "attention.yaml"
    plan = build_plan(attention, overrides=["stages.pretrain.data.children[1].p=0.2"])
    children = plan.get("separable", "pretrain").cfg.data.cfg.children
    assert [c.p for c in children] == [0.95, 0.2]
    with pytest.raises(ConfigError, match=r"command line: stages.pretrain.data.children\[1\].q: "
                                          r"unknown key 'q'; allowed keys: source \(required\)"):
        build_plan(attention, overrides=["stages.pretrain.data.children[1].q=0.2"])


def test_profile_overlay_and_tasks_block(fix, in_tmp, tmp_path):
    prof = tmp_path / "profiles"
    prof.mkdir()
    (prof / "small.yaml").write_text("optimizer: {lr: 0.5}\ntasks: {toy_write: {scale: 9.0}}\n")
    exp = tmp_path / "e.yaml"
    exp.write_text((fix / "experiments" / "two_stage.yaml").read_text().replace(
        "../plugins/toy_tasks.py", str(fix / "plugins" / "toy_tasks.py")))
    plan = build_plan(exp, profile="small")
    run = plan.get("b", "first")
    assert run.cfg.optimizer.cfg.lr == 0.5 and run.cfg.scale == 9.0 and run.cfg.value == 10
    with pytest.raises(ConfigError, match="no profile 'smal' .*did you mean 'small'"):
        build_plan(exp, profile="smal")


def test_run_options_stay_out_of_the_config_hash_and_the_rest_stays_in():
    table1 = Path(__file__).resolve().parents[3] / "experiments" / "table1.yaml"

    def hashes(*overrides):
        plan = build_plan(table1, overrides=list(overrides), seeds=1)
        return {r.key: r.config_hash for r in plan.runs}

    base = hashes()
    assert hashes("stages.pretrain.train.save_every=7", "stages.pretrain.train.log_every=3",
                  "stages.pretrain.train.keep_last=5", "stages.label.batch_size=2",
                  "stages.label.max_failure_fraction=0.5", "datasets.clip_memory_mb=0") == base
    changed = hashes("stages.pretrain.train.max_text_length=20")
    assert [k for k in base if changed[k] != base[k]] == [
        k for k in base if k.split("/")[1] in ("pretrain", "finetune", "evaluate",
                                               "shuffled_frames")]


def test_an_option_of_a_stage_some_variants_add_reaches_those_and_a_typo_is_named():
    table1 = Path(__file__).resolve().parents[3] / "experiments" / "table1.yaml"
    plan = build_plan(table1, overrides=["stages.shuffled_frames.scoring.tokenizer=simple"],
                      seeds=1)
    control = [r for r in plan.runs if r.stage == "shuffled_frames"]
    assert [r.key for r in control] == ["pseudolabels_laion,seed=0/shuffled_frames"]
    assert control[0].cfg.scoring.tokenizer == "simple"
    assert plan.get("asr,seed=0", "evaluate").cfg.scoring.tokenizer == "ptb"
    with pytest.raises(ConfigError, match=r"command line: stages.shufled_frames.scoring.tokenizer: "
                                          r"no stage 'shufled_frames' in any variant; did you mean "
                                          r"'shuffled_frames'\? stages: evaluate, finetune, label"):
        build_plan(table1, overrides=["stages.shufled_frames.scoring.tokenizer=simple"])


def test_a_list_index_override_reaches_the_variants_with_the_list():
    table1 = Path(__file__).resolve().parents[3] / "experiments" / "table1.yaml"
    plan = build_plan(table1, overrides=["stages.pretrain.data.children[1].p=0.2",
                                         "stages.pretrain.data.children[0].p=0.8"], seeds=1)
    mixture = plan.get("pseudolabels_laion,seed=0", "pretrain").cfg.data.cfg
    assert [c.p for c in mixture.children] == [0.8, 0.2]
    assert plan.get("laion,seed=0", "pretrain").cfg.data.name == "laion"  # no list: untouched
    with pytest.raises(ConfigError, match=r"command line: stages.pretrain.data.kids\[0\].p: "
                                          r"indexes a list that no variant has \(variant asr,seed=0 "
                                          r"has nothing at 'stages.pretrain.data.kids'\)"):
        build_plan(table1, overrides=["stages.pretrain.data.kids[0].p=0.5"], seeds=1)
