"""`slim-ingest ntu60|ntu120|pku2|synthetic|nwucla --raw DIR [--raw DIR] --out DIR
[--layout NAME]`."""
from __future__ import annotations

import json

import click

from slim.ingest.clitools import console, fail


def _command(dataset: str, doc: str) -> click.Command:
    @click.command(dataset, help=doc)
    @click.option("--raw", "raw", multiple=True, required=True, type=click.Path(),
                  help="folder with the raw files (searched recursively; repeatable)"
                  + ("; or the .zip archive itself" if dataset == "nwucla" else ""))
    @click.option("--out", default="data", show_default=True, type=click.Path(),
                  help="output root; the dataset goes to OUT/<dataset>/")
    @click.option("--workers", default=2, show_default=True, type=int,
                  help="parsing processes (0 or 1: in this process)")
    @click.option("--shard-size", "shard_size", default=64.0, show_default=True, type=float,
                  help="target WebDataset shard size in MB")
    @click.option("--no-center", is_flag=True, help="keep raw camera coordinates")
    @click.option("--layout", default=None,
                  help="store the skeletons in this layout (default: the dataset's own); "
                       "nwucla: ntu25 maps Kinect v1 onto NTU's 25 joints, for NTU-pretrained "
                       "encoders; the output goes to OUT/<dataset>-<layout>")
    @click.option("--view", "view", type=click.Choice(["none", "yaw", "full"]), default="none",
                  show_default=True,
                  help="turn each sample to its performer's own view (after centring): yaw = "
                       "about the vertical axis so the hips and shoulders face the camera, full = "
                       "also stand the spine up; worth it when cameras differ (NW-UCLA)")
    def cmd(raw, out, workers, shard_size, no_center, layout, view):
        from slim.ingest.clitools import err_console
        from slim.ingest.run import IngestConfig, IngestError, IngestInterrupted, run
        cfg = IngestConfig(dataset=dataset, raw=tuple(raw), out=out, workers=workers,
                           shard_size_mb=shard_size, center=not no_center, layout=layout,
                           view=view)
        console.print(f"[bold]slim-ingest {dataset}[/] {json.dumps(cfg.to_dict())}")
        try:
            out_dir, card = run(cfg, progress=True, log=console.print)
        except IngestError as e:
            hint = ("omit --layout to keep the dataset's own skeleton" if str(e).startswith("--layout")
                    else "check --raw; see `slim-ingest " + dataset + " --help`")
            fail(str(e), hint)
        except IngestInterrupted as e:
            err_console.print(f"[bold yellow]{e}[/]")
            raise click.exceptions.Exit(e.exit_code)
        benches = ", ".join(f"{b} {v['train']}/{v['test']}" for b, v in card["benchmarks"].items())
        console.print(f"[green]done[/]: {out_dir}: {card['num_samples']} samples, layout {card['layout']}, "
                      f"{card['num_classes']} classes, {benches} (train/test), "
                      f"{len(card['skipped'])} skipped, {len(card.get('ignored', []))} ignored "
                      f"(of {card.get('accounting', {}).get('files_seen', '?')} files seen)")
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
nwucla = _command("nwucla", "Ingest Northwestern-UCLA Multiview Action 3D: the JSON files "
                  "aAA_sSS_eEE_vVV.json (CTR-GCN's all_sqe/), from their folder or straight from "
                  "the .zip. Benchmarks xview (train views 1, 2 = 1,020; test view 3 = 464) and "
                  "xsub (odd subjects train, even test). Native layout kinect_v1_20 (20 joints); "
                  "--layout ntu25 maps onto NTU's 25 joints.")
