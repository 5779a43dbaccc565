"""``fcap-run``: run, inspect and report experiments.

    fcap-run EXPERIMENT.yaml [key=value ...] [--profile P] [--only V] [--stages S] [--seeds N]
             [--launcher local|slurm] [--plugin X ...] [--dry-run] [--force] [--debug]
    fcap-run --list [KIND]            every registered component, or one kind
    fcap-run status EXPERIMENT.yaml [the run's overrides and flags]   state of every variant/stage
    fcap-run report EXPERIMENT.yaml [the run's overrides and flags]   write report.md and plots

A stage whose config changed since it last ran (its options, the seed, or a
stage it depends on), one whose dependency completed again since (--stages
pretrain --force makes fine-tuning stale), or any chosen stage under --force,
starts from scratch (a complete stage selected only because a chosen one reads it,
such as another experiment's or a once-stage under --only, is kept unless --stages
names it):
its old outputs move to <run_dir>/.previous-<time>.old/ (only the latest such
folder is kept) and the log says why. Otherwise an interrupted or failed stage
resumes; so does one whose only changes are run options (--list task names them:
workers, failure budget, how often to log or save). Before anything runs or is
queued, the dataset folders, annotation files and local model checkpoints the
selected runs read must exist (MSR-VTT's and MSVD's annotation files are read too, as
fine-tuning will read them), and their hub models must be in the Hugging Face cache
or on the hub (exit 3 naming each; a model to be downloaded is a note); adapters
past the LM's last layer, and (local launcher) a precision this machine cannot train
in, are refused (exit 2). One process at a time runs a
stage: a second one stops with "stage X is being run by pid P on host H since T"
(exit 4). fcap writes only into run directories it created (marked .fcap-owned) or
that were empty.

Exit codes:
  0    success (or nothing left to do)
  1    a stage failed unexpectedly (traceback in its log.txt and FAILED.json), or was
       blocked by a failed or missing dependency
  2    configuration, plugin or command-line error, or an output folder this user
       cannot create (output_root on a read-only or missing mount, no permission)
  3    data error: a dataset, annotation file, media folder or model that is missing or
       malformed, too many unreadable media files (SkipLimitError), shards that do not
       merge, or a checkpoint that cannot be used (CheckpointError)
  4    busy: another process is running the stage (its run directory is locked)
  5    refused: an output folder holds files fcap did not write (fcap.io.OwnershipError)
  130  interrupted (Ctrl-C; SIGTERM or SIGHUP too: the stages stop as at Ctrl-C)
A stage that fails with an error of codes 2-5 gives that code; with several failed
stages, the first one's. Codes 2-5 print one message and no traceback; --debug
(or FCAP_DEBUG=1) prints the traceback too.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import shlex
import sys
import traceback
from contextlib import contextmanager
from typing import Sequence

from fcap import exit_codes, stop_signals
from fcap.run_flags import add_planning_flags

# Subcommands live in their own modules: name -> "module:function(argv) -> int".
SUBCOMMANDS = {
    "status": "fcap.status:main",
    "report": "fcap.report.cli:main",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fcap-run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", nargs="?", help="experiment YAML file")
    p.add_argument("overrides", nargs="*", help="dotted overrides key.sub=value (value is YAML)")
    add_planning_flags(p)
    p.add_argument("--dry-run", action="store_true", help="print the plan; run nothing")
    p.add_argument("--force", action="store_true",
                   help="rerun the chosen stages from scratch, even if complete (not the "
                        "complete ones they read: name those with --stages)")
    p.add_argument("--debug", action="store_true",
                   help="print tracebacks of user and data errors too (or FCAP_DEBUG=1)")
    p.add_argument("--list", nargs="?", const="", metavar="KIND",
                   help="list registered components (all kinds, or one)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    stop_signals.install()  # kill PID (SIGTERM) / a closed terminal stop the run as Ctrl-C does
    debug = "--debug" in argv  # any position, subcommands included
    argv = [a for a in argv if a != "--debug"]
    with _debug_env(debug):
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
            return exit_codes.CONFIG
        return _guard(lambda: _run(args))


@contextmanager
def _debug_env(debug: bool):
    """--debug sets FCAP_DEBUG=1 for this call (launchers and stage processes read it)."""
    old = os.environ.get("FCAP_DEBUG")
    if debug:
        os.environ["FCAP_DEBUG"] = "1"
    try:
        yield
    finally:
        if debug:
            if old is None:
                os.environ.pop("FCAP_DEBUG", None)
            else:
                os.environ["FCAP_DEBUG"] = old


def _guard(fn) -> int:
    """Run ``fn``; a user or data error becomes one message and its exit code."""
    try:
        return int(fn() or 0)
    except KeyboardInterrupt as err:  # Ctrl-C, or "stopped by SIGTERM" (stop_signals)
        print(f"fcap-run: {str(err) or 'interrupted'}", file=sys.stderr)
        return exit_codes.INTERRUPTED
    except Exception as err:
        code = exit_codes.code_for(err)
        if code is None:
            raise  # a bug: the traceback is the report
        if exit_codes.debug_enabled():
            traceback.print_exc()
        print(f"fcap-run: {err}", file=sys.stderr)
        return code


def _run(args) -> int:
    from fcap.experiment.command import plan_from_args, spare_for_force
    from fcap.experiment.preflight import (check_data, check_java, check_models,
                                           check_precision)

    plan = plan_from_args(args)
    if args.force:
        spared = spare_for_force(plan)
        if spared:
            plan.notes.append(spared)
    hub_notes = check_data(plan, force=args.force)
    check_models(plan, force=args.force)
    if plan.header.launcher.name == "local":
        check_java(plan, force=args.force)
        check_precision(plan, force=args.force)
    for note in [*plan.notes, *hub_notes]:
        print(f"fcap: {note}", flush=True)
    launcher = plan.header.launcher.build()
    n_var = len(plan.variants())
    print(f"fcap: {plan.name}: {len(plan.selected)} run(s) of {len(plan.runs)} "
          f"({n_var} variant(s)); launcher {plan.header.launcher.name}"
          + (f"; profile {plan.profile}" if plan.profile else ""), flush=True)
    code = launcher.launch(plan, force=args.force, dry_run=args.dry_run)
    if code == 0 and not args.dry_run:
        _after_run(plan)
    elif code != exit_codes.INTERRUPTED and not args.dry_run:
        _after_failure(plan)
    return code


def _after_run(plan) -> None:
    """After a local run finishes: write report.md and print the experiment's table, and how
    to see the training curves (the trainer logs to ``<run_dir>/tensorboard/``)."""
    from fcap.report.cli import print_table, write_report

    if not _reports_here(plan):
        return
    path = write_report(plan)
    if plan.header.report.columns:
        print_table(plan)
    print(f"fcap: report written to {path} (and {path.with_suffix('.html')})", flush=True)
    if any((run.run_dir / "tensorboard").is_dir() for run in plan.own_runs()):
        print(f"fcap: training curves: tensorboard --logdir {shlex.quote(str(plan.out_dir))}",
              flush=True)


def _reports_here(plan) -> bool:
    """Whether this local run rewrites the experiment's report.md."""
    if plan.header.launcher.name != "local":
        return False  # the cluster is still working: `fcap-run report` once it is done
    one_run = plan.one_run_config()
    if one_run:  # `fcap-run runs/.../config.yaml`: leave the experiment's report alone
        print(f"fcap: report not rewritten: {one_run}", flush=True)
        return False
    return True


def _after_failure(plan) -> None:
    """After a local run in which a stage failed: report.md again, so that it does not show
    an earlier run's numbers for a stage that has since failed; its runs table says which
    failed and why. A report that cannot be written leaves the failure's exit code as is."""
    from fcap.io import is_owned
    from fcap.report.cli import write_report

    if not is_owned(plan.out_dir) or not _reports_here(plan):  # claims no folder on a failure
        return
    try:
        path = write_report(plan)
    except Exception as err:  # noqa: BLE001 -- the stage's failure is what this run reports
        print(f"fcap: report not rewritten after the failure: {err}", flush=True)
        return
    print(f"fcap: report written to {path}: its runs table says which stages failed",
          flush=True)


def _list(kind: str, plugins: list[str]) -> int:
    from fcap.components import load_builtins
    from fcap.config.schema import describe_fields, input_path_keys, run_options
    from fcap.plugins import load_entry_point_plugins, load_plugins
    from registry import ALL, suggest

    load_builtins()
    load_entry_point_plugins()
    load_plugins(plugins)
    if kind and kind not in ALL:
        print(f"fcap-run: no kind '{kind}'{suggest(kind, ALL)} kinds: {', '.join(ALL)}",
              file=sys.stderr)
        return exit_codes.CONFIG
    for name, reg in ALL.items():
        if kind and name != kind:
            continue
        print(f"[{name}] ({len(reg)})")
        for entry in reg:
            print(f"  {entry.name:<20} {entry.doc}  ({entry.origin})")
            if entry.outputs:  # what {from: <stage>, output: NAME} reads (first: the default)
                print("      outputs: " + ", ".join(f"{n} ({rel})" for n, rel in entry.outputs))
            for fname, ftype, default in describe_fields(entry.config):
                print(f"      {fname}: {ftype} = {default}")
            run_only = run_options(entry.config) if name == "task" else frozenset()
            if run_only:  # changing one resumes the stage (fcap.config.schema.run_option)
                print(f"      run options, not in the config hash: {', '.join(sorted(run_only))}")
            read = input_path_keys(entry.config) if name == "task" else frozenset()
            if read:  # fcap.config.schema.input_path: what they hold, changed, reruns the stage
                print(f"      paths compared by content (changed: the stage reruns): "
                      f"{', '.join(sorted(read))}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
