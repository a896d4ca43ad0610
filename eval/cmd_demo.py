"""`slim-eval demo` (what `make demo` runs)."""
from __future__ import annotations

import click


@click.command("demo")
@click.option("--size", type=click.Choice(["small", "full"]), default="small", show_default=True,
              help="small: ~1,000 synthetic files, ~10 min pretraining on 2 cores; "
                   "full: 3,840 files, 1,800 steps, about 40 minutes.")
def demo(size):
    """Synthetic data -> ingest -> pretrain -> retrieval + linear vs a random encoder.

    Re-running reuses everything that exists (files, dataset, finished run, features).
    Writes runs/demo/summary.json (runs/demo-full for --size full).
    """
    from .demo import SIZES, run_demo
    run_demo(SIZES[size])
