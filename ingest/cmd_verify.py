"""`slim-ingest verify DIR`: checksums, counts, splits, and h5/shards/manifest agreement."""
from __future__ import annotations

from pathlib import Path

import click

from slim.ingest.clitools import console, fail


@click.command("verify")
@click.argument("folder", type=click.Path())
@click.option("--no-shards", is_flag=True, help="skip the sample-by-sample shard comparison")
@click.option("--fix-index", is_flag=True,
              help="first write the shards.json index of shard folders that lack one (datasets "
                   "ingested before shard indexes) and list it in card.json")
def verify(folder, no_shards, fix_index):
    """Re-check an ingested dataset folder; exit code 1 on any mismatch."""
    from slim.ingest.verify import verify as run_verify
    if not Path(folder).is_dir():
        fail(f"{folder}: no such folder", "give the dataset folder, e.g. data/ntu60")
    problems = run_verify(folder, check_shards=not no_shards, fix_index=fix_index)
    if problems:
        console.print(f"[bold red]{folder}: {len(problems)} problem(s)[/]")
        for p in problems:
            console.print(f"  [red]x[/] {p}")
        raise click.exceptions.Exit(1)
    console.print(f"[green]{folder}: OK[/] (checksums, counts, splits"
                  f"{'' if no_shards else ', shards'} agree)")
