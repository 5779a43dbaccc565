"""report.md: the experiment's table in the paper's layout, with plots and run metadata
(and report.html beside it: the same page, self-contained, :mod:`fcap.report.html`)."""
from __future__ import annotations

import os
import platform
from pathlib import Path

from fcap.experiment import code_version, environment, markers
from fcap.io import claim_dir, write_text_atomic
from fcap.report import skips
from fcap.report.html import write_html
from fcap.report.plots import draw_all
from fcap.report.table import SEPARATION, has_seeds, markdown_table, separation, table_rows


def metadata(plan) -> list[str]:
    import torch

    here = code_version.current()
    if here["commit"]:
        code = f"commit `{here['commit']}`" + (
            " with uncommitted changes to tracked files" if here["changes"] else "")
    else:
        code = "not a git checkout"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    lines = [
        f"- fcap {here['fcap']}, {code} (the code writing this report; the code column is "
        f"the one each run was made by)",
        f"- experiment file: `{plan.source}`" + (f", profile `{plan.profile}`" if plan.profile else ""),
        f"- hardware: {platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs "
        f"({environment.cpu_model()}), {device}; torch {torch.__version__}",
        "",
        "| run | task | config hash | state | wall time (s) | code | env |",
        "|---|---|---|---|---|---|---|",
    ]
    total, made_by, made_in, resumed = 0.0, {}, {}, 0
    for run in plan.own_runs():
        done = markers.completed(run)
        wall = (done or {}).get("wall_s")
        total += wall or 0.0
        attempt = int((done or {}).get("attempt") or 1)
        resumed += attempt > 1
        ran = code_version.short((done or {}).get("code")) if done else "-"
        env = environment.short((done or {}).get("env")) if done else "-"
        if done and done.get("code"):
            made_by.setdefault(ran, run.key)
        if done and done.get("env"):
            made_in.setdefault(env, (run.key, done["env"]))
        lines.append(f"| {run.key} | {run.task} | `{run.config_hash}` | "
                     f"{'done' if done else _not_done(run)} | {'-' if wall is None else wall}"
                     f"{f' (attempt {attempt})' if attempt > 1 else ''} | {ran} | {env} |")
    lines.append(f"\nTotal wall time of completed stages: {total:.1f} s."
                 + (f" {resumed} of them finished in a later attempt (after a stop, a failure or "
                    f"a requeue): their time is that attempt's alone, so the total is a lower "
                    f"bound." if resumed else ""))
    if len(made_by) > 1:
        lines.append(f"\n**The completed runs were made by {len(made_by)} versions of the code** "
                     f"({', '.join(f'{c} (e.g. {k})' for c, k in made_by.items())}): a "
                     f"difference between their numbers may come from the code alone.")
    if made_in:
        lines.append("\nEnvironments (the env column: libraries and processor):\n")
        lines += [f"- `{e}`: {environment.describe(env)}" for e, (_, env) in made_in.items()]
    if len(made_in) > 1:
        lines.append(f"\n**The completed runs were made in {len(made_in)} environments** "
                     f"({', '.join(f'{e} (e.g. {k})' for e, (k, _) in made_in.items())}): the "
                     f"same code and seeds give other numbers with other library versions or "
                     f"another processor.")
    return lines


def write_report(plan) -> Path:
    """Write ``<output_root>/<name>/report.md`` (+ ``plots/``, ``report.html``); return its path."""
    cfg = plan.header.report
    out_dir = claim_dir(plan.out_dir, kind="experiment", key="output_root")
    head, rows = table_rows(plan)
    plots = draw_all(plan, out_dir / "plots")  # inside the claimed experiment folder
    parts = [f"# {cfg.title or plan.name}", ""]
    if cfg.columns:
        parts += [markdown_table(head, rows), ""]
        if has_seeds(plan):  # every per-seed number stays available
            pairs = separation(plan)
            if pairs:
                parts += ["### Which rows differ", "",
                          f"Two rows are separated when their means differ by at least "
                          f"{SEPARATION:g} std (sample std over seeds, the larger of the two "
                          "rows'); a smaller gap is seed noise as far as these runs can tell.",
                          "", markdown_table(["column", "row", "row", "gap", f"{SEPARATION:g} std",
                                              ""], pairs), ""]
            parts += ["### Per seed", "", markdown_table(*table_rows(plan, per_seed=True)), ""]
    if cfg.notes:
        parts += [cfg.notes.strip(), ""]
    parts += skips.section(plan)
    if plots:
        parts += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    parts += ["## Runs", ""] + metadata(plan)
    path = write_text_atomic(out_dir / "report.md", "\n".join(parts) + "\n")
    write_html(path)
    return path


def _not_done(run) -> str:
    """A run without DONE.json of its config: 'failed: <the error's first line>' (its
    FAILED.json), 'running' (a process holds it) or 'not done'."""
    from fcap.status import stage_state

    state, detail = stage_state(run)
    if state == "failed":
        return f"failed: {detail.replace('|', '/')}" if detail else "failed"
    return "running" if state == "running" else "not done"
