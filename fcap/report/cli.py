"""``fcap-run report EXPERIMENT.yaml``: report.md beside the experiment's runs."""
from __future__ import annotations

import argparse

from fcap.report.write import table_rows, text_table, write_report


def print_table(plan) -> None:
    head, rows = table_rows(plan)
    title = plan.header.report.title or plan.name
    print(f"\n{title}\n{text_table(head, rows)}\n", flush=True)


def main(argv: list[str]) -> int:
    from fcap.experiment import build_plan

    p = argparse.ArgumentParser(prog="fcap-run report")
    p.add_argument("experiment")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--profile")
    p.add_argument("--plugin", action="append", default=[])
    args = p.parse_args(argv)
    plan = build_plan(args.experiment, overrides=args.overrides, profile=args.profile,
                      plugins=args.plugin)
    path = write_report(plan)
    if plan.header.report.columns:
        print_table(plan)
    print(f"fcap: report written to {path}")
    return 0
