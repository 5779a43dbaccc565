"""The command-line flags that choose a plan (experiment, overrides, ``--profile``,
``--only``, ...), shared by ``fcap-run``, its ``status`` / ``report`` subcommands
(fcap/experiment/command.py) and the commands fcap suggests. Imports nothing of fcap:
``fcap-run --help`` builds its parser from it without loading the planner."""
from __future__ import annotations

from typing import Any, Sequence

# fcap-run and its status / report subcommands take the same ones, so the run's command
# line works as is; planning_args gives them back.
PLANNING_FLAGS: dict[str, dict[str, Any]] = {
    "--profile": {"help": "overlay experiments/profiles/NAME.yaml (e.g. tiny, paper)"},
    "--plugin": {"action": "append", "default": [], "help": "module or .py file to import"},
    "--seeds": {"type": int, "metavar": "N", "help": "repeat every variant with N seeds "
                                                    "(seed .. seed+N-1); report: mean ± std"},
    "--launcher": {"help": "launcher name (local, slurm, ...)"},
    "--only": {"action": "append", "help": "variants to run (comma-separated, repeatable; a "
                                           "name with commas as listed: asr,seed=0)"},
    "--stages": {"action": "append", "help": "stages to run (comma-separated, repeatable)"},
}


def add_planning_flags(parser) -> None:
    """:data:`PLANNING_FLAGS` on an argparse parser (which adds the experiment and its
    overrides itself)."""
    for flag, options in PLANNING_FLAGS.items():
        parser.add_argument(flag, **options)


def planning_args(args) -> list[str]:
    """The arguments that chose this plan: what ``fcap-run status`` / ``report`` need to see
    the same runs (not --force, --dry-run, --debug, -q)."""
    out = [args.experiment, *args.overrides]
    for flag in PLANNING_FLAGS:
        value = getattr(args, flag[2:])
        for item in value if isinstance(value, list) else ([] if value in (None, "") else [value]):
            out += [flag, str(item)]
    return out


def split_names(values: Sequence[str] | None) -> list[str] | None:
    """Repeated, comma-separated ``--only`` / ``--stages`` values as one list (None: none);
    planning joins back the parts of a name that has commas (``plan._known_names``)."""
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]
