"""``fcap-run``: run, inspect and report experiments.

    fcap-run EXPERIMENT.yaml [key=value ...] [--profile P] [--only V] [--stages S]
             [--launcher local|slurm] [--plugin X ...] [--dry-run] [--force]
    fcap-run --list [KIND]            every registered component, or one kind
    fcap-run status EXPERIMENT.yaml   state of every variant/stage
    fcap-run report EXPERIMENT.yaml   write report.md and plots

Exit codes: 0 success, 1 a stage failed, 2 a configuration or plugin error.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from fcap.config.errors import ConfigError
from fcap.plugins import PluginError
from registry import UnknownComponentError

# Subcommands live in their own modules: name -> "module:function(argv) -> int".
SUBCOMMANDS = {
    "status": "fcap.status:main",
    "report": "fcap.report.cli:main",
}
USER_ERRORS = (ConfigError, PluginError, UnknownComponentError)


def _split(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fcap-run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", nargs="?", help="experiment YAML file")
    p.add_argument("overrides", nargs="*", help="dotted overrides key.sub=value (value is YAML)")
    p.add_argument("--profile", help="overlay experiments/profiles/NAME.yaml (e.g. tiny, paper)")
    p.add_argument("--only", action="append", help="variants to run (comma-separated, repeatable)")
    p.add_argument("--stages", action="append", help="stages to run (comma-separated, repeatable)")
    p.add_argument("--launcher", help="launcher name (local, slurm, ...)")
    p.add_argument("--plugin", action="append", default=[], help="module or .py file to import")
    p.add_argument("--dry-run", action="store_true", help="print the plan; run nothing")
    p.add_argument("--force", action="store_true", help="rerun stages even if complete")
    p.add_argument("--list", nargs="?", const="", metavar="KIND",
                   help="list registered components (all kinds, or one)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        module, func = SUBCOMMANDS[argv[0]].split(":")
        return _guard(lambda: getattr(importlib.import_module(module), func)(argv[1:]))
    args = parser().parse_intermixed_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if args.list is not None:
        return _guard(lambda: _list(args.list, args.plugin))
    if not args.experiment:
        parser().print_usage(sys.stderr)
        print("fcap-run: error: an EXPERIMENT.yaml (or --list) is required", file=sys.stderr)
        return 2
    return _guard(lambda: _run(args))


def _guard(fn) -> int:
    try:
        return int(fn() or 0)
    except USER_ERRORS as err:
        print(f"fcap-run: {err}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from fcap.experiment import build_plan

    plan = build_plan(args.experiment, overrides=args.overrides, profile=args.profile,
                      only=_split(args.only), stages=_split(args.stages), plugins=args.plugin,
                      launcher=args.launcher)
    for note in plan.notes:
        print(f"fcap: {note}", flush=True)
    launcher = plan.header.launcher.build()
    n_var = len(plan.variants())
    print(f"fcap: {plan.name}: {len(plan.selected)} run(s) of {len(plan.runs)} "
          f"({n_var} variant(s)); launcher {plan.header.launcher.name}"
          + (f"; profile {plan.profile}" if plan.profile else ""), flush=True)
    code = launcher.launch(plan, force=args.force, dry_run=args.dry_run)
    if code == 0 and not args.dry_run:
        _after_run(plan)
    return code


def _after_run(plan) -> None:
    """After a local run finishes: write report.md and print the experiment's table."""
    from fcap.report.cli import print_table, write_report

    if plan.header.launcher.name != "local":
        return  # the cluster is still working: `fcap-run report` once it is done
    path = write_report(plan)
    if plan.header.report.columns:
        print_table(plan)
    print(f"fcap: report written to {path}", flush=True)


def _list(kind: str, plugins: list[str]) -> int:
    from fcap.components import load_builtins
    from fcap.config.schema import describe_fields
    from fcap.plugins import load_entry_point_plugins, load_plugins
    from registry import ALL

    load_builtins()
    load_entry_point_plugins()
    load_plugins(plugins)
    if kind and kind not in ALL:
        import difflib
        close = difflib.get_close_matches(kind, list(ALL), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        print(f"fcap-run: no kind '{kind}'{hint} kinds: {', '.join(ALL)}", file=sys.stderr)
        return 2
    for name, reg in ALL.items():
        if kind and name != kind:
            continue
        print(f"[{name}] ({len(reg)})")
        for entry in reg:
            print(f"  {entry.name:<20} {entry.doc}  ({entry.origin})")
            for fname, ftype, default in describe_fields(entry.config):
                print(f"      {fname}: {ftype} = {default}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
