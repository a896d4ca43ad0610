"""`slim-ingest ntu60|ntu120|pku2|synthetic --raw DIR [--raw DIR] --out DIR`."""
from __future__ import annotations

import json

import click

from slim.ingest.clitools import console, fail


def _command(dataset: str, doc: str) -> click.Command:
    @click.command(dataset, help=doc)
    @click.option("--raw", "raw", multiple=True, required=True, type=click.Path(),
                  help="folder with the raw files (searched recursively; repeatable)")
    @click.option("--out", default="data", show_default=True, type=click.Path(),
                  help="output root; the dataset goes to OUT/<dataset>/")
    @click.option("--workers", default=2, show_default=True, type=int,
                  help="parsing processes (0 or 1: in this process)")
    @click.option("--shard-size", "shard_size", default=64.0, show_default=True, type=float,
                  help="target WebDataset shard size in MB")
    @click.option("--no-center", is_flag=True, help="keep raw camera coordinates")
    @click.option("--view", "view", type=click.Choice(["none", "yaw", "full"]), default="none",
                  show_default=True,
                  help="turn each sample to its performer's own view (after centring): yaw = "
                       "about the vertical axis so the hips and shoulders face the camera, full = "
                       "also stand the spine up; worth it when cameras differ (NW-UCLA)")
    def cmd(raw, out, workers, shard_size, no_center, view):
        from slim.ingest.run import IngestConfig, IngestError, run
        cfg = IngestConfig(dataset=dataset, raw=tuple(raw), out=out, workers=workers,
                           shard_size_mb=shard_size, center=not no_center, view=view)
        console.print(f"[bold]slim-ingest {dataset}[/] {json.dumps(cfg.to_dict())}")
        try:
            out_dir, card = run(cfg, progress=True, log=console.print)
        except IngestError as e:
            fail(str(e), "check --raw; see `slim-ingest " + dataset + " --help`")
        benches = ", ".join(f"{b} {v['train']}/{v['test']}" for b, v in card["benchmarks"].items())
        console.print(f"[green]done[/]: {out_dir}: {card['num_samples']} samples, "
                      f"{card['num_classes']} classes, {benches} (train/test), "
                      f"{len(card['skipped'])} skipped")
    return cmd


ntu60 = _command("ntu60", "Ingest NTU RGB+D 60 `.skeleton` files (S001-S017).")
ntu120 = _command("ntu120", "Ingest NTU RGB+D 120 `.skeleton` files (S001-S032; give both "
                  "archives' folders with --raw twice, or their common parent).")
pku2 = _command("pku2", "Ingest PKU-MMD phase II: --raw is a root holding the skeleton folder "
                "(e.g. skeleton/ or PKU_Skeleton_Renew/), the label folder (any folder whose "
                "name contains 'label', e.g. label/ or Train_Label_PKU_final/) and optionally "
                "cross_subject_v2.txt.")
synthetic = _command("synthetic", "Ingest the synthetic generator's NTU-format files with "
                     "NTU-60 rules (xsub over performers, xview cameras 2,3 vs 1).")
