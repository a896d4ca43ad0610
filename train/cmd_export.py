"""`slim-train export RUN`: the teacher encoder of a run's latest checkpoint as an
encoder-only file (`RUN/encoder.pt`, loadable with slim.model.io.load_encoder)."""
from __future__ import annotations

import click


@click.command("export")
@click.argument("run", required=False, type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Rewrite encoder.pt even when it is newer than the latest checkpoint.")
def export(run, force):
    """Write RUN/encoder.pt (the EMA teacher encoder: the one to evaluate).

    RUN defaults to the most recently updated folder under runs/. Pretraining writes
    this file by itself at the end; export an unfinished run to evaluate it mid-way.
    """
    from pathlib import Path

    from slim.ingest.clitools import console, fail

    from .checkpoint import ENCODER_FILE, CheckpointError, export_encoder
    from .runs import latest_run

    if run is None:
        found = latest_run("runs")
        if found is None:
            fail("no run folder under runs/", "pretrain first: slim-train pretrain")
        run = found
    run = Path(run)
    if not run.is_dir():
        fail(f"{run} does not exist", "give a run folder written by `slim-train pretrain` (see `ls runs/`)")
    if not (run / "run.json").is_file():
        what = ("a dataset folder (it holds samples.h5)" if (run / "samples.h5").is_file()
                else "not a run folder (no run.json)")
        fail(f"{run} is {what}; export reads a pretraining run's checkpoints",
             "give a run folder written by `slim-train pretrain`, e.g. `slim-train export runs/<name>` "
             "(see `ls runs/`)")
    if force:
        (run / ENCODER_FILE).unlink(missing_ok=True)
    try:
        path = export_encoder(run)
    except CheckpointError as exc:
        fail(str(exc), exc.hint)
    console.print(f"teacher encoder: {path}")
