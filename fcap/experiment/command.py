"""The command line of a plan: how ``fcap-run`` and its ``status`` / ``report`` subcommands
turn arguments into the same plan, and the arguments a later command needs to see it."""
from __future__ import annotations

from typing import Sequence

from fcap.experiment import markers
from fcap.experiment.plan import Plan, build_plan


def plan_from_argv(prog: str, argv: list[str]) -> Plan:
    """``EXPERIMENT.yaml [key=value ...]`` with the run's planning options (``--profile``,
    ``--plugin``, ``--seeds``, ``--launcher``, ``--only``, ``--stages``: the command line of
    the run works as is) -> its plan, ``selected`` by ``--only`` / ``--stages`` (subcommands)."""
    import argparse

    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("experiment")
    p.add_argument("overrides", nargs="*", help="dotted overrides key.sub=value, as for the run")
    p.add_argument("--profile")
    p.add_argument("--plugin", action="append", default=[])
    p.add_argument("--seeds", type=int)
    p.add_argument("--launcher", help="as for the run (where its jobs went)")
    p.add_argument("--only", action="append", help="variants, as for the run (status: their rows)")
    p.add_argument("--stages", action="append", help="stages, as for the run (status: their rows)")
    args = p.parse_intermixed_args(argv)
    plan = build_plan(args.experiment, overrides=args.overrides, profile=args.profile,
                      plugins=args.plugin, seeds=args.seeds, launcher=args.launcher,
                      only=split_names(args.only), stages=split_names(args.stages))
    plan.command = planning_args(args)
    return plan


def planning_args(args) -> list[str]:
    """The arguments that chose this plan: what ``fcap-run status`` / ``report`` need to see
    the same runs (not --force, --dry-run, --debug, -q)."""
    out = [args.experiment, *args.overrides]
    for flag, values in (("--profile", [args.profile] if args.profile else []),
                         ("--plugin", args.plugin or []),
                         ("--seeds", [] if args.seeds is None else [str(args.seeds)]),
                         ("--launcher", [args.launcher] if args.launcher else []),
                         ("--only", args.only or []), ("--stages", args.stages or [])):
        for value in values:
            out += [flag, value]
    return out


def split_names(values: Sequence[str] | None) -> list[str] | None:
    """Repeated, comma-separated ``--only`` / ``--stages`` values as one list (None: none);
    planning joins back the parts of a name that has commas (``plan._known_names``)."""
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


def spare_for_force(plan: Plan) -> str:
    """``--force`` reruns the runs the command chose. A complete run selected only because a
    chosen one reads it (another experiment's: Table 1's labels under Table 2; a once-stage
    under --only: the HowTo100M labels, 64 GPU-days at paper scale) leaves ``selected`` and
    is kept; the returned note says so and how to redo it ('' when none). An incomplete one
    stays selected and resumes: the launchers do not force ``plan.implicit``."""
    spared = [r for r in plan.selected if r.key in plan.implicit and markers.is_complete(r)]
    if not spared:
        return ""
    keys = {r.key for r in spared}
    plan.selected = [r for r in plan.selected if r.key not in keys]
    own = sorted({r.stage for r in spared if not r.external})
    redo = ([f"name them: --stages {','.join(own)} --force"] if own else []) + (
        ["run their experiment with --force"] if any(r.external for r in spared) else [])
    return (f"--force keeps {', '.join(r.key for r in spared)}: complete, and selected only "
            f"because the chosen runs read them; to redo them, {' or '.join(redo)}")
