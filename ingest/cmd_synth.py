"""`slim-ingest synth`: write a synthetic dataset in the real NTU (or PKU-MMD II) formats."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from slim.ingest.clitools import console, fail


@click.command("synth")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the raw files into (created if missing).")
@click.option("--classes", default=16, show_default=True, help="Number of action classes (1..25).")
@click.option("--performers", default=10, show_default=True, help="Performer ids 1..P (>= 3).")
@click.option("--replications", "--per-class", "per_class", default=2, show_default=True,
              help="How often each performer records each class. NTU: each recording is written once per "
                   "camera, so files = classes x performers x replications x 3; PKU: instances per performer "
                   "and class, packed into videos seen from 3 views (L, M, R). --per-class is the old name.")
@click.option("--seed", default=0, show_default=True, help="Everything random derives from it.")
@click.option("--format", "fmt", type=click.Choice(["ntu", "pku"]), default="ntu", show_default=True,
              help="ntu: .skeleton files, 3 cameras; pku: PKU-MMD II videos, labels, split file.")
@click.option("--facing-jitter", "facing_jitter", default=60.0, show_default=True,
              help="Degrees (uniform +-) by which a performer's facing deviates from camera 2 or 3.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth(out: Path, classes: int, performers: int, per_class: int, seed: int, fmt: str,
          facing_jitter: float, quiet: bool):
    """Generate synthetic skeleton recordings that the real ingest reads unchanged.

    \b
    Defaults give 16 classes x 10 performers x 2 replications x 3 cameras = 960 files
    (PKU: every video is written from 3 views); the total is printed before writing.
    The folder gets a manifest (synth.json); files of an earlier generation that this one
    does not write are removed, and a folder of raw files not made by the generator is
    refused.
      slim-ingest synth --out raw/synthetic
      slim-ingest synthetic --raw raw/synthetic --out data
    Deterministic given --seed; re-running rewrites only files whose bytes differ.
    """
    from slim.ingest.synth import SynthConfig, generate

    cfg = SynthConfig(classes=classes, performers=performers, per_class=per_class, seed=seed, format=fmt,
                      facing_jitter_deg=facing_jitter)
    try:
        cfg.validate()
    except ValueError as e:
        fail(str(e), "see `slim-ingest synth --help` for the allowed ranges")
    if out.exists() and not out.is_dir():
        fail(f"{out} exists and is not a folder", "pass a folder path to --out")
    from slim.ingest.synth import NotGeneratedFolder, planned_files
    if not quiet:
        console.print(f"[bold]synth[/] {asdict(cfg)} -> {out}")
    console.print(f"writing {planned_files(cfg)[1]}")
    try:
        summary = generate(out, cfg, progress=not quiet)
    except NotGeneratedFolder as e:
        fail(str(e), "choose an empty (or new) folder for --out, e.g. --out raw/synthetic-mine")
    mb = summary["bytes"] / 1e6
    if summary["removed"]:
        console.print(f"[yellow]removed {summary['removed']} files of an earlier generation[/] that this one "
                      "does not write (the next ingest would have taken them)")
    console.print(f"{summary['files']} files ({summary['written']} written, {summary['unchanged']} unchanged), "
                  f"{mb:.1f} MB, {summary['num_classes']} classes, {summary['performers']} performers, "
                  f"{summary['seconds']:.1f} s -> {out}")
    console.print("classes: " + ", ".join(f"{i + 1}:{n}" for i, n in enumerate(summary["classes"])))
