import json
import math
import textwrap

from fcap.cli import main
from fcap.experiment import plan_from_argv
from fcap.report.plots import bar_values


def test_report_table_plots_and_metadata(tmp_path, fix, in_tmp, capsys):
    exp = tmp_path / "rep.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: rep
        plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
        stages:
          first: {{task: toy_write, value: 2}}
          second: {{task: toy_write, init_from: first, value: 3}}
        variants:
          a: {{}}
          b: {{stages.first.value: 10}}
        report:
          title: "Toy table"
          columns: [{{stage: second, metric: score, label: Score, scale: 100}}]
          paper: {{a: [4.5], b: [null]}}
          row_labels: {{a: Alpha}}
          bars: true
    """))
    assert main([str(exp)]) == 0
    out = capsys.readouterr().out
    assert "Toy table" in out
    lines = [line.split() for line in out.splitlines()]
    assert ["Alpha", "5.0", "4.5"] in lines and ["b", "13.0", "-"] in lines
    report = (in_tmp / "runs/rep/report.md").read_text()
    assert "| Alpha | 5.0 | 4.5 |" in report and "| b | 13.0 | - |" in report
    assert "| a/second | toy_write |" in report
    # which code made each run (DONE.json), and which wrote the report
    from fcap.experiment.code_version import current, short
    made = short(current())
    assert f"- fcap {current()['fcap']}, " in report and "the code writing this report" in report
    assert report.count(f"| {made} |") == 4 and "versions of the code" not in report
    # and in which environment (libraries, processor): the same code may give other numbers
    from fcap.experiment import environment
    env = environment.short(environment.current())
    assert report.count(f"| {made} | {env} |") == 4 and "environments**" not in report
    assert f"- `{env}`: {environment.describe(environment.current())}" in report
    assert f", transformers {environment.current()['packages']['transformers']};" in report
    plots = sorted(p.name for p in (in_tmp / "runs/rep/plots").iterdir())
    assert plots == ["bars.png", "first_gates.png", "first_loss.png", "second_gates.png",
                     "second_loss.png"]
    assert all((in_tmp / "runs/rep/plots" / p).stat().st_size > 1000 for p in plots)
    # the subcommand rewrites it from the finished runs
    (in_tmp / "runs/rep/report.md").unlink()
    done = in_tmp / "runs/rep/b/second/DONE.json"  # as if b/second ran at another commit
    record = json.loads(done.read_text())
    record["code"] = {"fcap": "0.0.9", "commit": "0123456789abcdef", "changes": True}
    record["env"] = {**record["env"], "packages": {**record["env"]["packages"], "av": "17.0.0"}}
    done.write_text(json.dumps(record))
    assert main(["report", str(exp)]) == 0
    report = (in_tmp / "runs/rep/report.md").read_text()
    assert "| Alpha | 5.0 | 4.5 |" in report and "| 0123456+changes |" in report
    assert (f"**The completed runs were made by 2 versions of the code** ({made} (e.g. "
            f"a/first), 0123456+changes (e.g. b/second))") in report
    other = environment.short(record["env"])
    assert (f"**The completed runs were made in 2 environments** ({env} (e.g. a/first), "
            f"{other} (e.g. b/second))") in report and ", av 17.0.0, " in report
    assert "warning" not in capsys.readouterr().out
    # the run's command line forgotten: the report says why its cells are empty
    assert main(["report", str(exp), "stages.second.value=4"]) == 0
    assert "| Alpha | - | 4.5 |" in (in_tmp / "runs/rep/report.md").read_text()
    assert capsys.readouterr().out.endswith(
        "fcap: warning: 2 of 4 runs have not finished with this config, and their cells are "
        "'-'; 2 of them hold a finished run of another config: give report the run's command "
        f"line (its overrides, --profile, --seeds) (fcap-run status {exp} stages.second.value=4 "
        f"shows each run)\n")
    # no run at all there (a relative output_root, from another folder): no empty report
    # written into a new folder, and the same words from status
    missing = (f"no run of rep under {in_tmp / 'elsewhere' / 'rep'} (output_root 'elsewhere' "
               f"is relative to the working folder {in_tmp}: run this from the folder fcap-run "
               "ran in, or give output_root=/absolute/path)")
    assert main(["report", str(exp), "output_root=elsewhere"]) == 2
    assert f"  - command line: output_root: {missing}\n" in capsys.readouterr().err
    assert not (in_tmp / "elsewhere").exists()
    assert main(["status", str(exp), "output_root=elsewhere"]) == 0
    out, err = capsys.readouterr()
    assert out.count("pending") == 4 and err == f"fcap: {missing}\n"
    assert main(["status", str(exp)]) == 0 and capsys.readouterr().err == ""
    # the right folder, where another experiment ran and this one has not yet: said so
    fresh = tmp_path / "fresh.yaml"
    fresh.write_text(exp.read_text().replace("name: rep", "name: fresh"))
    assert main(["status", str(fresh)]) == 0
    assert capsys.readouterr().err == (f"fcap: no run of fresh under {in_tmp / 'runs' / 'fresh'} "
                                       f"(no stage of it has run yet; {in_tmp / 'runs'} holds "
                                       f"rep)\n")


def test_a_stage_finished_in_a_later_attempt_is_counted_as_such(tmp_path, fix, in_tmp):
    """Its DONE.json's wall time is the last attempt's: the label stage that failed its budget
    and then resumed read '0.161 s' in the report, as if labelling had taken no time."""
    exp = tmp_path / "again.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: again
        plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
        stages: {{first: {{task: toy_write, fail_first: true}}, second: {{task: toy_write}}}}
    """))
    assert main([str(exp)]) != 0
    assert main([str(exp)]) == 0  # resumes: the same config
    runs = in_tmp / "runs/again/default"
    assert json.loads((runs / "first/DONE.json").read_text())["attempt"] == 2
    assert json.loads((runs / "second/DONE.json").read_text())["attempt"] == 1
    report = (in_tmp / "runs/again/report.md").read_text()
    assert "| default/first | toy_write |" in report and " (attempt 2) |" in report
    assert report.count("(attempt ") == 1
    assert ("1 of them finished in a later attempt (after a stop, a failure or a requeue): "
            "their time is that attempt's alone, so the total is a lower bound.") in report
    # from scratch (the outputs, tried.txt too, moved aside): the count starts again
    assert main([str(exp), "--force"]) != 0 and main([str(exp)]) == 0
    assert json.loads((runs / "first/DONE.json").read_text())["attempt"] == 2


def test_the_report_after_a_failed_run_says_which_stage_failed_and_shows_no_old_number(
        tmp_path, fix, in_tmp, capsys):
    """report.md was left as the last successful run wrote it: a stage run again and failed
    still showed its old score and 'done'."""
    exp = tmp_path / "fails.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: fails
        plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
        stages: {{first: {{task: toy_write, value: 2, fail_first: true}}}}
        report: {{columns: [{{stage: first, metric: score, label: Score, scale: 100}}]}}
    """))
    report = in_tmp / "runs/fails/report.md"
    failed = "| failed: RuntimeError: the first attempt fails on purpose | - | - | - |"
    assert main([str(exp)]) == 1
    assert failed in report.read_text() and "| default | - |" in report.read_text()
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"fcap: report written to {report}: its runs table says which stages failed")
    assert main([str(exp)]) == 0
    assert "| default | 2.0 |" in report.read_text() and failed not in report.read_text()
    assert main([str(exp), "--force"]) == 1  # from scratch: its first attempt fails again
    assert failed in report.read_text() and "| default | - |" in report.read_text()


def test_a_column_prints_its_own_decimals(tmp_path, fix, in_tmp, capsys):
    """A loss of 0.7xx printed as '0.7' hid every difference between gate variants."""
    exp = tmp_path / "digits.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: digits
        plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
        stages: {{first: {{task: toy_write, value: 7}}}}
        report:
          columns: [{{stage: first, metric: score, label: S, digits: 3}},
                    {{stage: first, metric: seeded, label: N, digits: 0}}]
          paper: {{default: [0.0654, 9.0]}}
    """))
    assert main([str(exp)]) == 0
    assert "| default | 0.070 | 0.065 | 7 | 9 |" in (in_tmp / "runs/digits/report.md").read_text()
    exp.write_text(exp.read_text().replace("digits: 0", "digits: -1"))
    assert main([str(exp)]) == 2
    assert "digits must be 0..6, got -1" in capsys.readouterr().err


def test_report_block_is_validated(tmp_path, fix, capsys):
    exp = tmp_path / "bad.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: rep
        plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
        stages: {{first: {{task: toy_write}}}}
        report:
          columns: [{{stage: first, metric: score}}]
          paper: {{a: [1.0, 2.0]}}
          plots: [losss]
    """))
    assert main([str(exp)]) == 2
    err = capsys.readouterr().err
    assert "plots: unknown ['losss']" in err


def test_repeated_seeds_are_reported_as_mean_std_and_per_seed(tmp_path, fix, in_tmp, capsys):
    exp = tmp_path / "seeds.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: seeded
        plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
        seeds: 3
        stages: {{first: {{task: toy_write, value: 2}}}}
        variants: {{a: {{}}, b: {{stages.first.value: 10}}}}
        report:
          columns: [{{stage: first, metric: seeded, label: S}}]
          row_labels: {{a: Alpha}}
    """))
    assert main([str(exp), "--only", "a,seed=1"]) == 0  # a std over one seed is not 0
    report = (in_tmp / "runs/seeded/report.md").read_text()
    # no paper numbers in this report: no paper column
    assert "| variant | S |\n" in report
    assert "| Alpha | 3.0 (n=1, 2 not done) |\n" in report and "| b | - |\n" in report
    # the bars: one seed has no error bar, a row with none no bar (not one at 0)
    plan = plan_from_argv("fcap-run report", [str(exp)])
    labels, ours, spread, paper = bar_values(plan)
    assert labels == ["Alpha\n(n=1 of 3)", "b\n(not done)"] and ours[0] == 3.0
    assert math.isnan(ours[1]) and all(map(math.isnan, spread + paper))
    capsys.readouterr()
    assert main([str(exp)]) == 0
    assert bar_values(plan)[:3] == (["Alpha", "b"], [3.0, 11.0], [1.0, 1.0])
    out = capsys.readouterr().out
    assert "3.0 ± 1.0 (n=3)" in out and "11.0 ± 1.0 (n=3)" in out  # seeds 0, 1, 2
    report = (in_tmp / "runs/seeded/report.md").read_text()
    assert "| Alpha | 3.0 ± 1.0 (n=3) |\n" in report and "| b | 11.0 ± 1.0 (n=3) |\n" in report
    per_seed = report.split("### Per seed", 1)[1]
    for variant, value in (("Alpha (a,seed=0)", "2.0"), ("Alpha (a,seed=2)", "4.0"),
                           ("b,seed=1", "11.0")):
        assert f"| {variant} | {value} |\n" in per_seed


def test_a_control_row_is_listed_per_seed_too(tmp_path, fix, in_tmp):
    exp = tmp_path / "control.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: controlled
        plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
        seeds: 2
        stages: {{first: {{task: toy_write, value: 2}}, check: {{task: toy_write, value: 7}}}}
        variants: {{base: {{}}}}
        report:
          columns: [{{stage: first, metric: seeded, label: S}}]
          controls: [{{variant: base, stage: check, label: Ctl}}]
    """))
    assert main([str(exp)]) == 0
    report = (in_tmp / "runs/controlled/report.md").read_text()
    table, per_seed = report.split("### Per seed", 1)
    assert "| Ctl | 7.5 ± 0.7 (n=2) |\n" in table
    for seed, value in ((0, "7.0"), (1, "8.0")):
        assert f"| Ctl (base,seed={seed}) | {value} |\n" in per_seed


def test_attribute_columns_name_their_column_when_the_table_scores_several(tmp_path, fix, in_tmp):
    import json

    exp = tmp_path / "two.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: two
        plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
        stages:
          msvd: {{task: toy_write, value: 2}}
          msrvtt: {{task: toy_write, value: 3}}
        report:
          columns: [{{stage: msvd, metric: score, label: MSVD}},
                    {{stage: msrvtt, metric: score, label: MSR-VTT}}]
    """))
    assert main([str(exp)]) == 0
    for stage, colour in (("msvd", 0.5), ("msrvtt", 0.75)):  # as the attributes metric writes
        path = in_tmp / f"runs/two/default/{stage}/metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "colour": colour}))
    assert main(["report", str(exp)]) == 0
    report = (in_tmp / "runs/two/report.md").read_text()
    assert "| variant | MSVD | MSR-VTT | MSVD colour | MSR-VTT colour |\n" in report
    assert "| 0.50 | 0.75 |" in report
    # an attribute the report shows as a column of its own is not added again
    exp.write_text(exp.read_text().replace(
        "label: MSR-VTT}]", "label: MSR-VTT}, {stage: msvd, metric: colour, label: C}]"))
    assert main(["report", str(exp)]) == 0
    report = (in_tmp / "runs/two/report.md").read_text()
    assert "| variant | MSVD | MSR-VTT | C | MSR-VTT colour |\n" in report
