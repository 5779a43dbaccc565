"""Reruns: same config resumes, a changed config or --force starts from scratch, and a
folder fcap did not create is never touched."""
import json
from pathlib import Path

import yaml

from fcap.cli import main

HERE = Path(__file__).parent
TASKS = HERE / "rerun_tasks.py"
TRAIN_PLUGIN = HERE.parents[1] / "fixtures" / "plugins" / "slurm_tasks.py"


def experiment(tmp_path, stages, plugin=TASKS, name="re"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "plugins": [str(plugin)], "stages": stages}))
    return str(path)


def read(path):
    return json.loads(Path(path).read_text())


def previous_dirs(run_dir):
    return sorted(Path(run_dir).glob(".previous-*.old"))


def test_changed_training_config_retrains_from_step_0_and_force_starts_over(tmp_path, in_tmp):
    # The case: a finished DeepSpeed training stage, then more steps.
    exp = experiment(tmp_path, {"train": {"task": "slurm_toy_train", "steps": 2, "save_every": 1}},
                     plugin=TRAIN_PLUGIN)
    run_dir = in_tmp / "runs/re/default/train"
    assert main([exp]) == 0
    assert read(run_dir / "DONE.json")["summary"]["step"] == 2

    assert main([exp, "stages.train.steps=3"]) == 0  # was: CheckpointError, DONE.json gone
    assert read(run_dir / "DONE.json")["summary"] == {"world_size": 1, "resumed_from": None,
                                                      "step": 3}
    why = "config changed: steps 2 -> 3"
    assert why in (run_dir / "log.txt").read_text()
    assert read(run_dir / "RUN.json")["fresh_start"] == why
    (old,) = previous_dirs(run_dir)
    assert read(old / "DONE.json")["summary"]["step"] == 2
    assert sorted(p.name for p in (old / "checkpoints").iterdir()) == ["step-00000001",
                                                                       "step-00000002"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-00000002",
                                                                           "step-00000003"]

    assert main([exp, "stages.train.steps=3", "--force"]) == 0  # was: resumed at 3, 0 steps
    assert read(run_dir / "DONE.json")["summary"]["resumed_from"] is None
    assert "--force: starting from scratch" in (run_dir / "log.txt").read_text()


def test_same_config_resumes_changed_config_starts_fresh_keeping_one_previous(tmp_path, in_tmp,
                                                                              capsys):
    exp = experiment(tmp_path, {"work": {"task": "rerun_append", "value": 1, "fail_if": "FAIL"}})
    run_dir = in_tmp / "runs/re/default/work"
    (in_tmp / "FAIL").write_text("")
    assert main([exp]) == 1
    assert main([exp]) == 0  # same config: resumes over what the failed attempt left
    assert read(run_dir / "DONE.json")["summary"] == {"attempts": 2}
    assert previous_dirs(run_dir) == []

    capsys.readouterr()
    assert main([exp, "stages.work.value=2", "--dry-run"]) == 0
    assert "from scratch: config changed: value 1 -> 2" in capsys.readouterr().out
    assert main([exp, "stages.work.value=2"]) == 0
    assert read(run_dir / "DONE.json")["summary"] == {"attempts": 1}
    (old,) = previous_dirs(run_dir)
    assert (old / "progress.txt").read_text() == "1\n1\n"

    assert main([exp, "stages.work.value=3"]) == 0
    (old,) = previous_dirs(run_dir)  # only the latest previous outputs are kept
    assert (old / "progress.txt").read_text() == "2\n"
    assert (run_dir / "progress.txt").read_text() == "3\n"
    assert (run_dir / ".fcap-owned").is_file()


def test_a_changed_run_option_resumes_and_leaves_a_complete_stage_complete(tmp_path, in_tmp):
    exp = experiment(tmp_path, {"work": {"task": "rerun_append", "fail_if": "FAIL"},
                                "after": {"task": "rerun_append", "after": ["work"]}})
    run_dir = in_tmp / "runs/re/default/work"
    (in_tmp / "FAIL").write_text("")
    assert main([exp]) == 1
    assert main([exp, "stages.work.workers=4"]) == 0  # resumes over the failed attempt
    assert read(run_dir / "DONE.json")["summary"] == {"attempts": 2}
    assert previous_dirs(run_dir) == [] and "config changed" not in (run_dir / "log.txt").read_text()
    done = {s: read(in_tmp / f"runs/re/default/{s}/DONE.json") for s in ("work", "after")}
    assert main([exp, "stages.work.workers=2"]) == 0  # complete: nothing runs again
    assert {s: read(in_tmp / f"runs/re/default/{s}/DONE.json") for s in done} == done
    assert main([exp, "stages.work.workers=2", "stages.work.value=2"]) == 0  # not a run option
    why = read(run_dir / "RUN.json")["fresh_start"]
    assert why == "config changed: value 1 -> 2"  # the run option is not named as a change


def test_an_upstream_change_restarts_the_dependent_and_names_the_change(tmp_path, in_tmp):
    exp = experiment(tmp_path, {"first": {"task": "rerun_append", "value": 1},
                                "second": {"task": "rerun_append", "after": ["first"]}})
    assert main([exp]) == 0
    assert main([exp, "stages.first.value=5"]) == 0
    second = in_tmp / "runs/re/default/second"
    assert read(second / "DONE.json")["summary"] == {"attempts": 1}
    assert read(second / "RUN.json")["fresh_start"] == "config changed: stages.first.value 1 -> 5"


def test_a_dependency_forced_again_makes_what_read_it_stale(tmp_path, in_tmp, capsys):
    # --stages first --force reruns `first` with the same config: `second` was made from
    # its old outputs (moved aside), so it is not complete any more
    exp = experiment(tmp_path, {"first": {"task": "rerun_append"},
                                "second": {"task": "rerun_append", "init_from": "first"},
                                "third": {"task": "rerun_append", "after": ["second"]}})
    first, second = in_tmp / "runs/re/default/first", in_tmp / "runs/re/default/second"
    assert main([exp]) == 0
    assert read(second / "DONE.json")["deps"] == {"default/first": read(first / "DONE.json")["id"]}
    assert main([exp, "--stages", "first", "--force"]) == 0
    capsys.readouterr()
    assert main(["status", exp]) == 0
    lines = [line.split(None, 2) for line in capsys.readouterr().out.splitlines()[1:]]
    assert lines == [
        ["default/first", "done"],
        ["default/second", "pending", "default/first ran again since this stage completed"],
        ["default/third", "pending", "default/second is not complete (it runs first)"]]
    assert main([exp]) == 0  # second and third run again from scratch; first is kept
    assert read(first / "DONE.json")["summary"] == {"attempts": 1}
    assert (read(second / "RUN.json")["fresh_start"]
            == "default/first ran again since this stage completed")
    assert (read(in_tmp / "runs/re/default/third/RUN.json")["fresh_start"]
            == "default/second ran again since this stage completed")
    assert len(previous_dirs(second)) == 1
    capsys.readouterr()
    assert main(["status", exp]) == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]] == ["done"] * 3
    # a DONE.json of older fcap (no deps recorded) is not second-guessed
    done = read(second / "DONE.json")
    del done["deps"]
    (second / "DONE.json").write_text(json.dumps(done))
    assert main([exp, "--stages", "first", "--force"]) == 0
    capsys.readouterr()
    assert main(["status", exp]) == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]] == [
        "done", "done", "done"]  # and what reads it stays complete as well


def test_a_reference_to_a_stage_that_runs_again_is_compared_once_it_has_run(tmp_path, in_tmp,
                                                                             capsys):
    toy = HERE.parents[1] / "fixtures" / "plugins" / "toy_tasks.py"
    exp = experiment(tmp_path, {"first": {"task": "toy_write", "value": 1},
                                "second": {"task": "toy_write", "init_from": "first"},
                                "third": {"task": "toy_write", "upstream": {"from": "second"}}},
                     plugin=toy)
    assert main([exp]) == 0
    assert main([exp, "--stages", "first", "--force"]) == 0
    capsys.readouterr()
    assert main(["status", exp]) == 0
    rows = [line.split(None, 2) for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows[1:] == [
        ["default/second", "pending", "default/first ran again since this stage completed"],
        ["default/third", "done", "reads default/second, not complete now: checked again once "
                                  "it has run"]]
    assert main([exp]) == 0  # second's out.json comes out byte for byte: third is kept
    calls = (in_tmp / "runs/re/calls.txt").read_text().split()
    assert calls == ["default/first", "default/second", "default/third", "default/first",
                     "default/second"]


def test_a_path_option_declared_an_input_is_compared_by_content(tmp_path, in_tmp, capsys):
    # adapters: /elsewhere/adapters trained again elsewhere: the evaluation was "complete"
    made = tmp_path / "made.txt"
    made.write_text("first")
    exp = experiment(tmp_path, {"read": {"task": "rerun_read", "source": str(made)}})
    run_dir = in_tmp / "runs/re/default/read"
    assert main([exp]) == 0
    assert main([exp]) == 0  # unchanged: complete
    assert read(run_dir / "DONE.json")["summary"] == {"attempts": 1}
    made.write_text("second, longer")
    capsys.readouterr()
    assert main(["status", exp]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(None, 2) == [
        "default/read", "pending", "input changed: source (made.txt)"]
    assert main([exp]) == 0
    assert (run_dir / "copy.txt").read_text() == "second, longer"
    assert read(run_dir / "RUN.json")["fresh_start"] == "input changed: source (made.txt)"


def test_pseudolabels_given_as_a_path_are_compared_by_content(tmp_path, in_tmp, capsys):
    """A lab labels HowTo100M once (pseudolabel_howto100m.yaml) into <root>/howto100m/, then
    labels it again with other options into the same file: pretraining on it was complete."""
    import fcap.data  # noqa: F401  (registers howto100m)

    (tmp_path / "data" / "howto100m").mkdir(parents=True)
    labels = tmp_path / "data" / "howto100m" / "pseudolabels.jsonl"
    labels.write_text('{"video_id": "a", "clip_index": 0, "start": 0, "end": 8, "caption": "x"}\n')
    exp = experiment(tmp_path, {"pretrain": {
        "task": "rerun_source", "datasets": {"root": str(tmp_path / "data")},
        "data": {"name": "howto100m", "root": "howto100m", "captions": "pseudolabel"}}})
    run_dir = in_tmp / "runs/re/default/pretrain"
    assert main([exp]) == 0 and main([exp]) == 0  # unchanged: complete
    assert read(run_dir / "DONE.json")["summary"] == {"attempts": 1}
    assert read(run_dir / "DONE.json")["inputs"]["data.pseudolabels"]["path"] == str(labels)
    labels.write_text(labels.read_text().replace('"x"', '"a new caption"'))
    capsys.readouterr()
    assert main(["status", exp]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(None, 2) == [
        "default/pretrain", "pending", "input changed: data.pseudolabels (pseudolabels.jsonl)"]
    assert main([exp]) == 0
    assert read(run_dir / "RUN.json")["fresh_start"] == ("input changed: data.pseudolabels "
                                                         "(pseudolabels.jsonl)")
    assert read(run_dir / "DONE.json")["summary"] == {"attempts": 1}  # from scratch
    asr = experiment(tmp_path, {"pretrain": {  # ASR captions: HowTo100M's own, not tracked
        "task": "rerun_source", "datasets": {"root": str(tmp_path / "data")},
        "data": {"name": "howto100m", "root": "howto100m", "captions": "asr"}}}, name="asr")
    from fcap.experiment import build_plan
    from fcap.experiment.inputs import paths
    assert paths(build_plan(asr).get("default", "pretrain")) == {}


def test_status_names_a_stage_that_was_stopped_before_it_finished(tmp_path, in_tmp, capsys):
    from fcap.experiment import markers
    from fcap.experiment.plan import build_plan

    exp = experiment(tmp_path, {"work": {"task": "rerun_append"}})
    run = build_plan(exp).runs[0]
    markers.mark_started(run)  # what a Ctrl-C or a killed process leaves: RUN.json alone
    assert main(["status", exp]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    started = read(run.run_dir / "RUN.json")["started_at"]
    assert row.split(None, 2) == ["default/work", "pending", (
        f"started {started} on {__import__('socket').gethostname()} and stopped before it "
        f"finished (interrupted or killed); the next fcap-run resumes it")]


def test_a_folder_fcap_did_not_create_is_refused_not_wiped_even_with_force(tmp_path, in_tmp,
                                                                           capsys):
    exp = experiment(tmp_path, {"work": {"task": "rerun_append"}})
    run_dir = in_tmp / "runs/re/default/work"
    run_dir.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("my notes")
    (run_dir / "DONE.json").write_text("{}")
    # first the experiment folder is not fcap's; then (marked as fcap's) only the run folder
    for refused in (run_dir.parents[1], run_dir):
        for extra in ([], ["--force"]):
            capsys.readouterr()
            assert main([exp, *extra]) == 5
            err = capsys.readouterr().err
            assert f"fcap-run: fcap will not use {refused} (set by output_root)" in err
            assert "Traceback" not in err
            assert sorted(p.name for p in run_dir.iterdir()) == ["DONE.json", "notes.txt"]
            assert (run_dir / "notes.txt").read_text() == "my notes"
        (run_dir.parents[1] / ".fcap-owned").write_text("{}")  # as if fcap had created it


def test_a_hash_change_without_an_option_change_says_so(tmp_path, in_tmp):
    exp = experiment(tmp_path, {"work": {"task": "rerun_append"}})
    run_dir = in_tmp / "runs/re/default/work"
    assert main([exp]) == 0
    for name in ("RUN.json", "DONE.json"):  # as an older fcap hashed the same config
        doc = read(run_dir / name)
        (run_dir / name).write_text(json.dumps({**doc, "config_hash": "0123456789abcdef"}))
    assert main([exp]) == 0
    why = read(run_dir / "RUN.json")["fresh_start"]
    assert why.startswith("config changed: config hash 0123456789abcdef -> ")
    assert why.endswith(" with no option changed (how fcap hashes this config changed: another "
                        "fcap version, or a plugin's task)")


def test_a_variant_changing_a_run_option_of_a_once_stage_is_refused(tmp_path, in_tmp, capsys):
    path = tmp_path / "once.yaml"
    path.write_text(yaml.safe_dump({
        "name": "once", "plugins": [str(TASKS)],
        "stages": {"work": {"task": "rerun_append", "once": True}},
        "variants": {"a": {}, "b": {"stages.work.workers": 3}}}))
    assert main([str(path), "--dry-run"]) == 2  # one run for both: b's workers would be ignored
    assert ("variant b: stages.work.once: stage 'work' runs once for all variants (once: true), "
            "but variant 'b' changes its config") in capsys.readouterr().err


def test_force_with_only_resumes_an_unfinished_once_stage_instead_of_restarting_it(tmp_path,
                                                                                 in_tmp):
    exp = experiment(tmp_path, {"label": {"task": "rerun_append", "once": True, "fail_if": "FAIL"},
                                "use": {"task": "rerun_append", "after": ["label"]}})
    exp_doc = yaml.safe_load(Path(exp).read_text())
    exp_doc["variants"] = {"a": {}, "b": {"stages.use.value": 2}}
    Path(exp).write_text(yaml.safe_dump(exp_doc))
    label = in_tmp / "runs/re/all_variants/label"
    (in_tmp / "FAIL").write_text("")
    assert main([exp, "--only", "a"]) == 1  # the labels fail half way: a's use is blocked
    assert main([exp, "--only", "a", "--force"]) == 0  # a's stages forced; the labels resume
    assert read(label / "DONE.json")["summary"] == {"attempts": 2}
    assert previous_dirs(label) == [] and read(in_tmp / "runs/re/a/use/DONE.json")
    assert main([exp, "--only", "a", "--stages", "label", "--force"]) == 0  # named: restarted
    assert read(label / "DONE.json")["summary"] == {"attempts": 1} and len(previous_dirs(label)) == 1
