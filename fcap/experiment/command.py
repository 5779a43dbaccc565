"""The command line of a plan: how ``fcap-run`` and its ``status`` / ``report`` subcommands
turn the same arguments (fcap/run_flags.py) into the same plan, and what ``--force``
spares."""
from __future__ import annotations

from fcap.experiment import markers
from fcap.experiment.plan import Plan, build_plan
from fcap.run_flags import add_planning_flags, planning_args, split_names


def plan_from_args(args) -> Plan:
    """The plan that parsed planning arguments choose, knowing its own command line
    (``plan.command``, for the commands fcap suggests later)."""
    plan = build_plan(args.experiment, overrides=args.overrides, profile=args.profile,
                      plugins=args.plugin, seeds=args.seeds, launcher=args.launcher,
                      only=split_names(args.only), stages=split_names(args.stages))
    plan.command = planning_args(args)
    return plan


def plan_from_argv(prog: str, argv: list[str]) -> Plan:
    """``EXPERIMENT.yaml [key=value ...]`` with the run's planning flags (the command line
    of the run works as is) -> its plan, ``selected`` by ``--only`` / ``--stages``
    (the status / report subcommands)."""
    import argparse

    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("experiment")
    p.add_argument("overrides", nargs="*", help="dotted overrides key.sub=value, as for the run")
    add_planning_flags(p)
    return plan_from_args(p.parse_intermixed_args(argv))


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
