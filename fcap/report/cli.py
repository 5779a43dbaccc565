"""``fcap-run report EXPERIMENT.yaml``: report.md beside the experiment's runs."""
from __future__ import annotations

from fcap.report.table import table_rows, text_table
from fcap.report.write import write_report


def print_table(plan) -> None:
    head, rows = table_rows(plan)
    title = plan.header.report.title or plan.name
    print(f"\n{title}\n{text_table(head, rows)}\n", flush=True)


def main(argv: list[str]) -> int:
    from fcap.experiment import plan_from_argv

    plan = plan_from_argv("fcap-run report", argv)
    from fcap.config.errors import ConfigError, Problem

    one_run = plan.one_run_config()
    if one_run:
        raise ConfigError([Problem("command line", "EXPERIMENT", one_run)])
    missing = plan.not_found()
    if missing:  # nothing to report: write no report.md into a folder of nothing
        raise ConfigError([Problem("command line", "output_root", missing)])
    path = write_report(plan)
    if plan.header.report.columns:
        print_table(plan)
    print(f"fcap: report written to {path} (and {path.with_suffix('.html')})")
    unfinished = _unfinished(plan)
    if unfinished:
        print(f"fcap: warning: {unfinished}", flush=True)
    return 0


def _unfinished(plan) -> str:
    """What the report could not read: runs of this plan not finished with its config, and
    how many of them hold a finished run of another config (another command line)."""
    from fcap.experiment import markers

    runs = [r for r in plan.selected if not r.external]
    waiting = [r for r in runs if not markers.is_complete(r)]
    if not waiting:
        return ""
    other = sum(1 for r in waiting if markers.read_done(r))
    return (f"{len(waiting)} of {len(runs)} runs have not finished with this config, and "
            f"their cells are '-'" + (
                f"; {other} of them hold a finished run of another config: give report the "
                f"run's command line (its overrides, --profile, --seeds)" if other else "")
            + f" ({plan.then('status')} shows each run)")
