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
    path = write_report(plan)
    if plan.header.report.columns:
        print_table(plan)
    print(f"fcap: report written to {path} (and {path.with_suffix('.html')})")
    return 0
