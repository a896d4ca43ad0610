"""`slim-eval report RUN...`: the runs' results side by side with the paper's numbers."""
from __future__ import annotations

from pathlib import Path

import click

from slim.ingest.clitools import console, err_console, fail


@click.command("report")
@click.argument("runs", nargs=-1, type=click.Path(file_okay=False))
def report(runs):
    """One table over several runs (default: every run under runs/)."""
    from .report import report_table
    if not runs:
        from slim.train.runs import list_runs
        runs = [str(p) for p in list_runs()]
    if not runs:
        fail("no runs to report", "pass run folders, e.g. `slim-eval report runs/a runs/b`")
    absent = [r for r in runs if not Path(r).is_dir()]
    if absent:
        fail(f"no such run folder: {', '.join(absent)}", "pass run folders written by `slim-train pretrain`")
    missing = [r for r in runs if not (Path(r) / "eval").is_dir()]
    for r in missing:
        err_console.print(f"[yellow]note:[/] {r} has no eval/ results yet (run `slim-eval linear --run {r}`)")
    table, problems = report_table([Path(r) for r in runs])
    for p in problems:
        err_console.print(f"[yellow]skipped:[/] {p}")
    console.print(table)
