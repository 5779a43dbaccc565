"""Run one stage in this process (the unit every launcher executes).

``python -m fcap.runner RUN_DIR/config.yaml --stage NAME`` runs a stage from
its resolved config; under torchrun or SLURM each rank runs this, reading
RANK/WORLD_SIZE/... from the environment. Launchers own the completion markers
and the run directory's lock; :func:`execute` claims the directory (never
writing into a folder fcap did not create) and logs a failure's traceback to
the stage's log file, not the console.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from fcap.context import StageContext
from fcap.experiment import markers
from fcap.io import write_json_atomic

RANK0_SUMMARY = ".summary.rank0.json"  # rank 0's task summary, for a launcher of several ranks
LOG_FORMAT = markers.LOG_FORMAT


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def context_for(plan, run, *, extra: dict | None = None) -> StageContext:
    deps = {name: dep.run_dir for name, dep in plan.dependencies(run)}
    return StageContext(
        experiment=run.experiment, variant=run.variant, stage=run.stage, run_dir=run.run_dir,
        config_hash=run.config_hash, deps=deps,
        init_from=deps.get(run.init_from) if run.init_from else None,
        seed=run.seed, logger=logging.getLogger(f"fcap.{run.stage}"),
        resources=run.resources, extra=dict(extra or {}),
    )


def execute(plan, run, *, extra: dict | None = None) -> Any:
    """Run ``run``'s task with a per-stage log file; return its summary. The process's torch
    thread count is given back as found: a stage that sets its own (the CPU captioner's
    ``cpu_threads``) does not change the numbers of the stages the local launcher runs after
    it in the same process."""
    import torch

    threads = torch.get_num_threads()
    try:
        return _execute(plan, run, extra=extra)
    finally:
        torch.set_num_threads(threads)


def _execute(plan, run, *, extra: dict | None = None) -> Any:
    from registry import TASKS

    markers.claim(run)
    r = rank()
    if r == 0:
        markers.write_config(run)
    log_name = markers.LOG if r == 0 else f"log.rank{r}.txt"
    handler = logging.FileHandler(run.run_dir / log_name)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger("fcap")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        ctx = context_for(plan, run, extra=extra)
        ctx.logger.info("stage %s (task %s, config %s) in %s", run.key, run.task,
                        run.config_hash, run.run_dir)
        producers = dict(plan.dependencies(run))
        for ref in run.spec.refs if run.spec else ():  # what this stage reads from others
            ctx.logger.info("input %s = %s (output '%s' of %s, config %s)", ref.dotted, ref.path,
                            ref.output, ref.dep_name, producers[ref.dep_name].config_hash)
        summary = TASKS.get(run.task).obj(run.cfg, ctx)
        return summary
    except BaseException:
        # The traceback goes to the stage's log only: the launcher reports the error.
        handler.handle(logging.LogRecord("fcap", logging.ERROR, __file__, 0, "stage %s failed",
                                         (run.key,), sys.exc_info()))
        raise
    finally:
        root.removeHandler(handler)
        handler.close()


def main(argv: list[str] | None = None) -> int:
    from fcap.experiment import build_plan

    parser = argparse.ArgumentParser(prog="python -m fcap.runner", description=__doc__)
    parser.add_argument("config", type=Path, help="a resolved config.yaml (or any experiment)")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--variant", default=None, help="default: the config's only variant")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    plan = build_plan(args.config)
    variant = args.variant or plan.variants()[0]
    run = plan.get(variant, args.stage)
    summary = execute(plan, run)
    if rank() == 0:  # the launcher that started the ranks stores it in DONE.json
        write_json_atomic(run.run_dir / RANK0_SUMMARY, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
