"""`slim-eval report RUN...`: the runs' results side by side with the paper's numbers."""
from __future__ import annotations

from pathlib import Path

import click

from slim.ingest.clitools import console, err_console, fail


@click.command("report")
@click.argument("runs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "md", "csv"]), default="table",
              show_default=True,
              help="table: for the terminal; md: a Markdown table; csv: comma-separated, to stdout.")
def report(runs, fmt):
    """One table over several runs (default: every run under runs/): the latest top-1 (%)
    of each protocol, data, k, pool, selection and encoder, read from each folder's
    append-only eval/results.jsonl, with the paper's number.

    \b
    A folder may be a run (it has run.json) or the folder of an encoder file evaluated
    with --encoder FILE (it has eval/). Results of unfinished runs are marked *.
    \b
      slim-eval report
      slim-eval report runs/a runs/b --format md > results.md
    """
    from .report import csv_text, markdown, report_rows, rich_table
    if not runs:
        from slim.train.runs import list_runs
        runs = [str(p) for p in list_runs()]
        if not runs:
            fail("no runs under runs/ to report", "pass run folders, e.g. `slim-eval report runs/a runs/b`")
    for r in runs:
        p = Path(r)
        if not p.is_dir():
            fail(f"{r}: no such run folder", "pass run folders made by `slim-train pretrain` (see `ls runs/`)")
        if not (p / "run.json").is_file() and not (p / "eval").is_dir():
            fail(f"{r} is not a run folder (no run.json) and holds no eval/ results",
                 "pass a folder made by `slim-train pretrain` (see `ls runs/`)")
    for r in runs:
        if not (Path(r) / "eval").is_dir():
            err_console.print(f"[yellow]note:[/] {r} has no eval/ results yet "
                              f"(e.g. `slim-eval linear --run {r}`)")
    header, rows, problems, unfinished = report_rows([Path(r) for r in runs])
    for p in problems:
        err_console.print(f"[yellow]skipped:[/] {p}")
    if fmt == "md":
        click.echo(markdown(header, rows), nl=False)
    elif fmt == "csv":
        click.echo(csv_text(header, rows), nl=False)
    else:
        note = "* result of an unfinished run (partly trained encoder)" if unfinished else ""
        console.print(rich_table(header, rows, note))
