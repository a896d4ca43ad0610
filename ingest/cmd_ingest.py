"""`slim-ingest ntu60|ntu120|pku2|synthetic|nwucla --raw DIR [--raw DIR] --out DIR
[--layout NAME]`; for ntu60/ntu120 also `--from pyskl|ctrgcn|stgcn SOURCE...` (a
preprocessed file users already have; ingest/importer.py)."""
from __future__ import annotations

import json
import signal

import click

from slim.ingest.clitools import console, fail


IMPORTABLE = ("ntu60", "ntu120")


def _import_options(dataset: str):
    """--from / SOURCE... / --names: only on the NTU commands."""
    def deco(f):
        if dataset not in IMPORTABLE:
            return f
        f = click.argument("sources", nargs=-1, type=click.Path())(f)
        f = click.option("--from", "from_", type=click.Choice(["pyskl", "ctrgcn", "stgcn"]),
                         default=None,
                         help="import a preprocessed file instead of raw files: pyskl "
                              "(ntu60_3danno.pkl), ctrgcn (NTU60_CS.npz [NTU60_CV.npz]), stgcn "
                              "(folder with train_/val_data_joint.npy + _label.pkl)")(f)
        f = click.option("--names", "names_file", default=None, type=click.Path(),
                         help="--from ctrgcn: the reference's skes_available_name.txt, to "
                              "recover sample names from the npz's order")(f)
        return f
    return deco


def _command(dataset: str, doc: str) -> click.Command:
    @click.command(dataset, help=doc)
    @_import_options(dataset)
    @click.option("--raw", "raw", multiple=True, required=dataset not in IMPORTABLE,
                  type=click.Path(),
                  help="folder with the raw files (searched recursively; repeatable)"
                  + ("; or the .zip archive itself (read without unpacking)"
                     if dataset in ("nwucla", "ntu60", "ntu120", "synthetic", "pku2") else ""))
    @click.option("--out", default="data", show_default=True, type=click.Path(),
                  help="output root; the dataset goes to OUT/<dataset>/")
    @click.option("--workers", default=2, show_default=True, type=int,
                  help="parsing processes (0 or 1: in this process)")
    @click.option("--shard-size", "shard_size", default=64.0, show_default=True, type=float,
                  help="target WebDataset shard size in MB")
    @click.option("--shard-encoding", "shard_encoding", default="f32", show_default=True,
                  type=click.Choice(["f32", "f16", "f32.gz", "f16.gz"]),
                  help="how shards store the joints: f32 as samples.h5; f16 halves them (error "
                       "<= 2^-11 |x|, under 1 mm within 4 m of the body centre); .gz: gzip-"
                       "compressed members (README: Shards from object storage and HTTP)")
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
    def cmd(raw, out, workers, shard_size, shard_encoding, no_center, layout, view, from_=None,
            sources=(), names_file=None):
        if dataset in IMPORTABLE and (from_ or sources):
            if view != "none":
                fail("--view applies to raw ingest only", "omit --view with --from (the "
                     "preprocessed file's own normalisation is kept and recorded)")
            _run_import(dataset, from_, sources, raw, out, shard_size, not no_center, layout,
                        names_file, shard_encoding)
            return
        if not raw:
            fail("no --raw folder given", f"slim-ingest {dataset} --raw DIR"
                 + (f", or slim-ingest {dataset} --from pyskl|ctrgcn|stgcn FILE"
                    if dataset in IMPORTABLE else ""))
        from slim.ingest.clitools import err_console
        from slim.ingest.run import IngestConfig, IngestError, IngestInterrupted, run
        cfg = IngestConfig(dataset=dataset, raw=tuple(raw), out=out, workers=workers,
                           shard_size_mb=shard_size, center=not no_center, layout=layout,
                           view=view, shard_encoding=shard_encoding)
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


def _run_import(dataset, from_, sources, raw, out, shard_size, center, layout, names_file,
                shard_encoding="f32"):
    from slim.ingest.importer import SourceError, run_import
    if not from_:
        fail(f"file arguments {', '.join(sources)} need --from", "--from pyskl|ctrgcn|stgcn")
    if raw:
        fail("--raw and --from are exclusive", "give either raw folders or one preprocessed source")
    if layout:
        fail("--layout is not supported with --from", "omit --layout")
    hint = {"pyskl": f"slim-ingest {dataset} --from pyskl ntu60_3danno.pkl (the pickle itself)",
            "ctrgcn": f"slim-ingest {dataset} --from ctrgcn NTU60_CS.npz [NTU60_CV.npz]",
            "stgcn": f"slim-ingest {dataset} --from stgcn DIR (train_data_joint.npy, "
                     "train_label.pkl, val_data_joint.npy, val_label.pkl)"}[from_]
    console.print(f"[bold]slim-ingest {dataset}[/] --from {from_} {' '.join(sources)}")
    from slim.ingest.clitools import err_console
    from slim.ingest.run import _Stop, _StopSignals
    try:
        with _StopSignals():
            out_dir, card = run_import(dataset, from_, list(sources), out, center=center,
                                       shard_size_mb=shard_size, names_file=names_file,
                                       log=console.print, shard_encoding=shard_encoding)
    except SourceError as e:
        fail(str(e), hint)
    except _Stop as stop:
        # importer.py: no card.json is left, so nothing half-written counts as done.
        err_console.print(f"[bold yellow]interrupted by {stop.name}; the import is not finished "
                          "(no card.json); run the same command to import again[/]")
        raise click.exceptions.Exit(128 + int(signal.Signals[stop.name]))
    src = card["source"]
    benches = ", ".join(f"{b} {v['train']}/{v['test']}" for b, v in card["benchmarks"].items())
    console.print(f"[green]done[/]: {out_dir}: {src['entries_seen']} entries = "
                  f"{src['samples_written']} samples + {src['entries_skipped']} skipped; "
                  f"{benches} (train/test)")


ntu60 = _command("ntu60", "Ingest NTU RGB+D 60 `.skeleton` files (S001-S017; a folder or the "
                 "official zip), or import a preprocessed file with --from: "
                 "`--from pyskl ntu60_3danno.pkl`, `--from ctrgcn NTU60_CS.npz [NTU60_CV.npz] "
                 "[--names skes_available_name.txt]`, `--from stgcn DIR`.")
ntu120 = _command("ntu120", "Ingest NTU RGB+D 120 `.skeleton` files (S001-S032; give both "
                  "archives (folders or the zips) with --raw twice, or their common parent), "
                  "or import a preprocessed file with --from: `--from pyskl ntu120_3danno.pkl`, "
                  "`--from ctrgcn NTU120_CSub.npz [NTU120_CSet.npz]`, `--from stgcn DIR`.")
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
