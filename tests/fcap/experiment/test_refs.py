"""Stages read what earlier stages wrote: {from: stage} references, across experiments too."""
import json
from pathlib import Path

import pytest
import yaml

from fcap.cli import main
from fcap.config.errors import ConfigError
from fcap.experiment import build_plan

ROOT = Path(__file__).resolve().parents[3]
TOY = ROOT / "tests" / "fixtures" / "plugins" / "toy_tasks.py"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def producer_consumer(tmp_path, *, value=2) -> Path:
    return write(tmp_path / "exp" / "pc.yaml", f"""
name: pc
plugins: [{TOY}]
stages:
  first: {{task: toy_write, value: {value}}}
  second: {{task: toy_write, value: 3, upstream: {{from: first}}}}
""")


def calls(root: Path, name: str) -> list[str]:
    path = root / "runs" / name / "calls.txt"
    return path.read_text().split() if path.exists() else []


def test_reference_becomes_the_path_and_a_dependency(tmp_path, in_tmp):
    exp = producer_consumer(tmp_path)
    plan = build_plan(exp)
    second = plan.get("default", "second")
    first_out = plan.get("default", "first").run_dir / "out.json"
    assert second.cfg.upstream == str(first_out)
    assert second.deps == ("first",)  # no after: needed
    assert second.inputs == {"upstream": str(first_out)}
    assert main([str(exp)]) == 0
    assert json.loads((second.run_dir / "out.json").read_text())["total"] == 5
    resolved = yaml.safe_load((second.run_dir / "config.yaml").read_text())
    assert resolved["stages"]["second"]["upstream"] == {"from": "first", "output": "out",
                                                        "path": str(first_out)}
    log = (second.run_dir / "log.txt").read_text()
    assert f"input upstream = {first_out} (output 'out' of first" in log
    # a re-plan from the resolved config.yaml is the same run (SLURM jobs and ranks do this)
    again = build_plan(second.run_dir / "config.yaml").get("default", "second")
    assert again.config_hash == second.config_hash and again.cfg.upstream == str(first_out)


def test_the_consumer_hash_chains_on_the_producer(tmp_path, in_tmp):
    exp = producer_consumer(tmp_path)
    assert main([str(exp)]) == 0
    assert main([str(exp)]) == 0
    assert calls(in_tmp, "pc") == ["default/first", "default/second"]  # second time: all skipped
    before = build_plan(exp).get("default", "second").config_hash
    after = build_plan(exp, overrides=["stages.first.value=7"]).get("default", "second")
    assert after.config_hash != before
    assert main([str(exp), "stages.first.value=7"]) == 0
    assert calls(in_tmp, "pc")[2:] == ["default/first", "default/second"]
    assert json.loads((after.run_dir / "out.json").read_text())["total"] == 10


@pytest.mark.parametrize("ref, expected", [
    ("{from: frist}", r"no stage 'frist' to read from; did you mean 'first'\? stages: first"),
    ("{from: first, output: adapters}", r"stage 'first' \(task toy_write\) has no output "
                                        r"'adapters'; outputs: out"),
    ("{from: second}", r"no stage 'second' to read from"),
    ("{from: 'laion/first'}", r"named without a variant"),
    ("{from: nothere.yaml:first}", r"no experiment file .*nothere.yaml"),
])
def test_a_bad_reference_is_a_config_error_listing_what_exists(tmp_path, ref, expected):
    exp = write(tmp_path / "bad.yaml", f"""
name: bad
plugins: [{TOY}]
stages:
  first: {{task: toy_write}}
  second: {{task: toy_write, upstream: {ref}}}
""")
    with pytest.raises(ConfigError, match=r"stages\.second\.upstream: bad reference") as err:
        build_plan(exp)
    assert err.match(expected)
    assert len(err.value.problems) == 1  # not also "expected str, got dict"


def test_another_experiments_stage_runs_once_and_is_reused(tmp_path, in_tmp):
    producer_consumer(tmp_path)
    user = write(tmp_path / "exp" / "user.yaml", f"""
name: user
plugins: [{TOY}]
stages:
  use: {{task: toy_write, value: 100, upstream: {{from: pc.yaml:first}}}}
""")
    plan = build_plan(user)
    assert [r.key for r in plan.selected] == ["pc:default/first", "default/use"]
    own = build_plan(tmp_path / "exp" / "pc.yaml").get("default", "first")
    assert plan.runs[0].config_hash == own.config_hash and plan.runs[0].run_dir == own.run_dir
    assert main([str(user)]) == 0  # runs pc's first stage, in pc's own run directory
    assert calls(in_tmp, "pc") == ["default/first"]
    assert main([str(tmp_path / "exp" / "pc.yaml")]) == 0  # pc itself: first is done already
    assert calls(in_tmp, "pc") == ["default/first", "default/second"]
    use = plan.get("default", "use")
    assert json.loads((use.run_dir / "out.json").read_text())["total"] == 102
    resolved = yaml.safe_load((use.run_dir / "config.yaml").read_text())["stages"]["use"]
    assert resolved["upstream"]["path"] == str(own.run_dir / "out.json")
    assert resolved["upstream"]["hash"] == own.config_hash
    again = build_plan(use.run_dir / "config.yaml")  # pinned: the producer is not re-planned
    assert again.get("default", "use").config_hash == use.config_hash
    pinned = again.dependencies(again.get("default", "use"))[0][1]
    assert (pinned.key, pinned.run_dir, pinned.config_hash) == (
        "pc:default/first", own.run_dir, own.config_hash) and pinned not in again.runs
    # and the stage runs from it (what a SLURM job does): it read pc's stage through the plan,
    # which does not hold a pinned run (KeyError 'pc:default/first')
    assert main([str(use.run_dir / "config.yaml"), "--force"]) == 0
    assert json.loads((use.run_dir / "out.json").read_text())["total"] == 102
    assert calls(in_tmp, "pc") == ["default/first", "default/second"]
    assert main([str(user), "stages.use.value=1"]) == 0
    assert calls(in_tmp, "pc") == ["default/first", "default/second"]  # never labelled twice
    # re-labelling (a changed producer) changes the consumer's hash
    changed = build_plan(user, overrides=[]).get("default", "use").config_hash
    write(tmp_path / "exp" / "pc.yaml", (tmp_path / "exp" / "pc.yaml").read_text()
          .replace("value: 2}", "value: 4}"))
    assert build_plan(user).get("default", "use").config_hash != changed


def test_force_reruns_what_was_chosen_not_the_complete_runs_it_reads(tmp_path, in_tmp, capsys):
    """Table 2 --force did not relabel Table 1's HowTo100M, nor Table 1 --only V --force its
    once-stages (64 GPU-days at paper scale): those are named, and how to redo them."""
    producer_consumer(tmp_path)
    user = write(tmp_path / "exp" / "user.yaml", f"""
name: user
plugins: [{TOY}]
stages:
  label: {{task: toy_write, value: 10, once: true}}
  use: {{task: toy_write, init_from: label, value: 100, upstream: {{from: pc.yaml:first}}}}
variants:
  a: {{}}
  b: {{stages.use.value: 200}}
""")
    assert main([str(user)]) == 0
    assert calls(in_tmp, "pc") == ["default/first"] and calls(in_tmp, "user") == [
        "all_variants/label", "a/use", "b/use"]
    capsys.readouterr()
    assert main([str(user), "--only", "a", "--force"]) == 0
    assert calls(in_tmp, "pc") == ["default/first"]
    assert calls(in_tmp, "user") == ["all_variants/label", "a/use", "b/use", "a/use"]
    assert ("fcap: --force keeps pc:default/first, all_variants/label: complete, and selected "
            "only because the chosen runs read them; to redo them, name them: --stages label "
            "--force or run their experiment with --force\n") in capsys.readouterr().out
    assert main([str(user), "--only", "a", "--stages", "label", "--force"]) == 0  # named
    assert calls(in_tmp, "user")[-1] == "all_variants/label" and calls(in_tmp, "pc") == [
        "default/first"]
    assert main([str(user), "--force"]) == 0  # everything of this experiment, not pc's
    assert calls(in_tmp, "user")[-3:] == ["all_variants/label", "a/use", "b/use"]
    assert calls(in_tmp, "pc") == ["default/first"]


def test_experiment_reference_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", f"name: a\nplugins: [{TOY}]\nstages:\n"
                               "  s: {task: toy_write, upstream: {from: b.yaml:s}}\n")
    write(tmp_path / "b.yaml", f"name: b\nplugins: [{TOY}]\nstages:\n"
                               "  s: {task: toy_write, upstream: {from: a.yaml:s}}\n")
    with pytest.raises(ConfigError, match="experiment reference cycle"):
        build_plan(tmp_path / "a.yaml")


def test_grid_seeds_reach_each_run_under_the_local_launcher(tmp_path, in_tmp):
    exp = write(tmp_path / "seeds.yaml", f"""
name: seeds
plugins: [{TOY}]
grid: {{seed: [1, 2]}}
stages:
  s: {{task: toy_write}}
""")
    plan = build_plan(exp)
    assert [r.seed for r in plan.runs] == [1, 2]
    assert main([str(exp)]) == 0
    seeds = [json.loads((r.run_dir / "out.json").read_text())["seed"] for r in plan.runs]
    assert seeds == [1, 2]


def test_table1_pretrain_reads_its_own_merged_pseudolabels(fcap_cache):
    plan = build_plan(ROOT / "experiments" / "table1.yaml")
    merge = plan.get("pseudolabels,seed=0", "merge")
    labels = str(merge.run_dir / "pseudolabels.jsonl")
    pre = plan.get("pseudolabels,seed=0", "pretrain")
    assert pre.cfg.data.cfg.pseudolabels == labels and "merge" in pre.deps
    mixed = plan.get("pseudolabels_laion,seed=0", "pretrain")
    assert mixed.cfg.data.cfg.children[1].source.cfg.pseudolabels == labels
    assert "merge" not in plan.get("laion,seed=0", "pretrain").deps
    relabel = build_plan(ROOT / "experiments" / "table1.yaml",
                         overrides=["stages.label.sampling.top_p=0.8"])
    assert relabel.get("pseudolabels,seed=0", "pretrain").config_hash != pre.config_hash
    assert relabel.get("laion,seed=0", "pretrain").config_hash == plan.get("laion,seed=0", "pretrain").config_hash


def test_table2_reads_table1s_pseudolabels_by_reference(fcap_cache, tmp_path):
    plan = build_plan(ROOT / "experiments" / "table2.yaml", overrides=[f"output_root={tmp_path}"])
    t1 = build_plan(ROOT / "experiments" / "table1.yaml", profile="tiny",
                    overrides=[f"output_root={tmp_path}"])
    merge = t1.get("asr,seed=0", "merge")
    assert [r.key for r in plan.selected[:2]] == ["table1:all_variants/label",
                                                  "table1:all_variants/merge"]
    assert plan.runs[1].config_hash == merge.config_hash
    child = plan.get("default", "pretrain").cfg.data.cfg.children[1].source.cfg
    assert child.pseudolabels == str(merge.run_dir / "pseudolabels.jsonl")
    # the SLURM launcher's options are this plan's: Table 1 is not planned with them (they
    # were "unknown key 'profile'" for its tiny profile's local launcher)
    on_slurm = build_plan(ROOT / "experiments" / "table2.yaml", launcher="slurm",
                          overrides=[f"output_root={tmp_path}", "launcher.profile=local",
                                     "launcher.wait=true"])
    assert on_slurm.header.launcher.name == "slurm" and on_slurm.header.launcher.cfg.wait
    assert [r.config_hash for r in on_slurm.runs[:2]] == [r.config_hash for r in plan.runs[:2]]


def test_table2_on_real_data_reads_the_labels_table1_makes_with_the_same_command_line(tmp_path):
    for name in ("howto100m", "laion", "msrvtt", "msvd"):
        (tmp_path / "data" / name).mkdir(parents=True)
    line = [f"datasets.root={tmp_path / 'data'}", f"output_root={tmp_path / 'runs'}"]
    t2 = build_plan(ROOT / "experiments" / "table2.yaml", profile="paper", overrides=line)
    t1 = build_plan(ROOT / "experiments" / "table1.yaml", profile="paper", overrides=line)
    label, merge = (r for r in t2.runs if r.external)
    assert merge.config_hash == t1.get("all_variants", "merge").config_hash
    assert label.cfg.videos == str(tmp_path / "data" / "howto100m")
    # a stage override and the seed are this experiment's own: table1's stages are planned
    # without them (its labels are reused, not made again for seed=1)
    own = build_plan(ROOT / "experiments" / "table2.yaml", profile="paper",
                     overrides=[*line, "stages.pretrain.train.steps=700", "seed=1"])
    assert own.get("default", "pretrain").cfg.train.steps == 700
    assert own.get("default", "pretrain").seed == 1
    assert [r.config_hash for r in own.runs if r.external] == [label.config_hash, merge.config_hash]


def test_an_option_of_a_stage_only_the_read_experiment_has_goes_there(tmp_path, in_tmp):
    """stages.label.videos=howto100m on table2.yaml (Table 1 has the label stage): it was "no
    stage 'label'", with no way to set it; an option of a stage both have stays this one's."""
    producer_consumer(tmp_path)
    user = write(tmp_path / "exp" / "user.yaml", f"""
name: user
plugins: [{TOY}]
stages:
  second: {{task: toy_write, value: 1}}
  use: {{task: toy_write, value: 100, upstream: {{from: pc.yaml:first}}}}
""")
    plan = build_plan(user, overrides=["stages.first.value=7", "stages.second.value=5"])
    first = next(r for r in plan.runs if r.external)
    alone = build_plan(tmp_path / "exp" / "pc.yaml", overrides=["stages.first.value=7"])
    assert first.cfg.value == 7 and first.config_hash == alone.get("default", "first").config_hash
    assert plan.get("default", "second").cfg.value == 5  # its own stage, not pc's second
    assert plan.notes == ["stages.first.value=7: applied to pc.yaml, whose stage this "
                          "experiment reads"]
    assert main([str(user), "stages.first.value=7"]) == 0
    assert json.loads((plan.get("default", "use").run_dir / "out.json").read_text())["total"] == 107
    with pytest.raises(ConfigError) as err:  # a typo: in neither file
        build_plan(user, overrides=["stages.frist.value=7"])
    assert ("stages.frist.value: no stage 'frist' in any variant (nor in pc.yaml, which it "
            "reads from)") in str(err.value)


def test_table2_on_a_root_with_the_tiny_models_labels_that_root_as_table1_does(tmp_path):
    """The README's tiny-models-on-your-data line, on Table 2: its label options reach
    Table 1's label stage, so Table 2 reads the labels Table 1 makes with the same line."""
    for name in ("howto100m", "laion", "msrvtt", "msvd"):
        (tmp_path / "data" / name).mkdir(parents=True)
    line = ["datasets.shapes_world=null", f"datasets.root={tmp_path / 'data'}",
            f"output_root={tmp_path / 'runs'}", "stages.label.shapes=null",
            "stages.label.videos=howto100m"]
    t2 = build_plan(ROOT / "experiments" / "table2.yaml", profile="tiny", overrides=line)
    t1 = build_plan(ROOT / "experiments" / "table1.yaml", profile="tiny", overrides=line)
    label, merge = (r for r in t2.runs if r.external)
    assert label.cfg.videos == str(tmp_path / "data" / "howto100m")
    assert [label.config_hash, merge.config_hash] == [
        t1.get("all_variants", s).config_hash for s in ("label", "merge")]


def test_list_shows_each_tasks_outputs(capsys):
    assert main(["--list", "task"]) == 0
    out = capsys.readouterr().out
    merge = out.split("pseudolabel_merge", 1)[1]
    assert "outputs: pseudolabels (pseudolabels.jsonl), index (index.json), report (report)" in merge
    assert "outputs: adapters (adapters)" in out.split("caption_pretrain", 1)[1]
    label = out.split("\n  pseudolabel ", 1)[1].split("pseudolabel_merge", 1)[0]
    assert ("      run options, not in the config hash: batch_size, flush_every, "
            "max_failure_fraction, num_workers, prefetch_videos\n") in label
    assert ("run options, not in the config hash: datasets.clip_memory_mb, train.keep_last, "
            "train.log_every, train.save_every\n") in out.split("caption_pretrain", 1)[1]
    evaluate = out.split("\n  caption_eval ", 1)[1].split("caption_finetune", 1)[0]
    assert "      paths compared by content (changed: the stage reruns): adapters\n" in evaluate
    assert "paths compared" not in out.split("caption_pretrain", 1)[1].split("extract_features")[0]


def test_an_output_outside_the_run_directory_cannot_be_registered():
    from registry import Registry

    reg = Registry("task")
    with pytest.raises(ValueError, match="inside the run directory"):
        reg.register("t", outputs={"x": "../elsewhere"})(lambda cfg, ctx: None)


def seeds_experiment(tmp_path, extra: str = "") -> Path:
    return write(tmp_path / "seeds.yaml", f"""
name: seeds
plugins: [{TOY}]
grid: {{seed: [1, 2]}}
{extra}
stages:
  s: {{task: toy_write, value: 4}}
""")


def test_grid_seeds_under_two_local_ranks_and_rank0_summary_kept(tmp_path, in_tmp, monkeypatch):
    exp = seeds_experiment(tmp_path, "launcher: {name: local, nproc: 2}")
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # torchrun's own temp folders would land here
    assert main([str(exp)]) == 0
    assert sorted(p.name for p in scratch.iterdir()) == []  # no torchelastic_* left behind
    plan = build_plan(exp)
    for run, seed in zip(plan.runs, (1, 2)):
        assert json.loads((run.run_dir / "out.json").read_text())["seed"] == seed
        done = json.loads((run.run_dir / "DONE.json").read_text())
        assert done["summary"] == {"total": 4}  # the task's summary, not {"nproc": 2}


def test_grid_seed_survives_the_replan_a_slurm_job_does(tmp_path, in_tmp):
    from fcap.experiment import markers
    from fcap.runner import context_for

    plan = build_plan(seeds_experiment(tmp_path))
    second = plan.runs[1]
    config = markers.write_config(second)
    again = build_plan(config)  # what fcap.launchers.slurm_job.StageJob does on the node
    run = again.get(second.variant, "s")
    assert run.config_hash == second.config_hash
    assert context_for(again, run).seed == 2


def test_seeds_repeat_every_variant_and_only_selects_the_group(tmp_path, in_tmp):
    exp = write(tmp_path / "rep.yaml", f"""
name: rep
plugins: [{TOY}]
seed: 10
seeds: 2
stages:
  s: {{task: toy_write}}
variants:
  a: {{}}
  b: {{stages.s.value: 3}}
""")
    plan = build_plan(exp)
    assert [(r.variant, r.seed) for r in plan.runs] == [
        ("a,seed=10", 10), ("a,seed=11", 11), ("b,seed=10", 10), ("b,seed=11", 11)]
    assert [r.variant for r in build_plan(exp, only=["b"]).selected] == ["b,seed=10", "b,seed=11"]
    assert len(build_plan(exp, seeds=3).runs) == 6  # --seeds N on the command line
    with pytest.raises(ConfigError, match="seeds: expected an int >= 1"):
        build_plan(exp, seeds=0)
    assert len(build_plan(exp, overrides=["seeds=3"]).runs) == 6  # was ignored: 4 runs
    with pytest.raises(ConfigError) as err:  # said once (the header's type check said it too)
        build_plan(exp, overrides=["seeds=three"])
    assert [(p.key, p.message) for p in err.value.problems] == [
        ("seeds", "expected an int >= 1 (repeat every variant with that many seeds), got 'three'")]
    with pytest.raises(ConfigError) as err:  # was "grid: unknown key 'grid' allowed keys: ..."
        build_plan(exp, overrides=["variants.b.stages.s.value=4"])
    assert [(p.key, p.message) for p in err.value.problems] == [(
        "variants.b.stages.s.value", "variants and grids are the experiment file's: on the "
        "command line, pick variants with --only NAME, repeat them with --seeds N (or seeds=N), "
        "or set an option for every variant (e.g. optimizer.lr=1e-3)")]


def test_init_from_is_sugar_for_an_adapters_reference(fcap_cache):
    table1 = ROOT / "experiments" / "table1.yaml"
    sugar = build_plan(table1).get("laion,seed=0", "finetune")
    ref = build_plan(table1, overrides=["stages.finetune.init_from=null",
                                        "stages.finetune.adapters={from: pretrain}"])
    finetune = ref.get("laion,seed=0", "finetune")
    pretrain = ref.get("laion,seed=0", "pretrain")
    assert finetune.deps == ("pretrain",) == sugar.deps
    assert finetune.cfg.adapters == str(pretrain.run_dir / "adapters")


def test_an_edited_input_makes_its_consumer_stale_and_rerun_from_scratch(tmp_path, in_tmp):
    import os

    from fcap.experiment import markers

    exp = producer_consumer(tmp_path)
    assert main([str(exp)]) == 0
    plan = build_plan(exp)
    first, second = plan.get("default", "first"), plan.get("default", "second")
    out = first.run_dir / "out.json"
    assert markers.is_complete(second)
    os.utime(out)  # touched, same bytes: still complete (the stamp differs, the sha256 not)
    assert markers.is_complete(second)
    out.write_text(json.dumps({"total": 40}))  # one "pseudolabel" edited by hand
    assert not markers.is_complete(second) and markers.is_complete(first)
    assert main([str(exp)]) == 0
    assert calls(in_tmp, "pc") == ["default/first", "default/second", "default/second"]
    run_json = json.loads((second.run_dir / "RUN.json").read_text())
    assert run_json["fresh_start"] == "input changed: upstream (out.json)"
    assert json.loads((second.run_dir / "out.json").read_text())["total"] == 43
