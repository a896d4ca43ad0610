"""`slim-eval flops`: encoder cost of ours vs the MAMP encoder, counted the same way
(PROTOCOLS "Cost convention"), optionally averaged over a dataset's persons and with CPU
inference throughput measured side by side."""
from __future__ import annotations

import json
from pathlib import Path

import click


def _dataset_persons(data: Path) -> dict[str, float]:
    """Mean persons per sample over the whole manifest and over each split column."""
    from slim.ingest.clitools import fail
    from slim.ingest.manifest import read_manifest

    try:
        table, meta = read_manifest(data)
    except FileNotFoundError as e:
        fail(str(e), "pass --data the folder written by `slim-ingest` (it holds manifest.parquet)")
    if "num_persons" not in table.column_names:
        fail(f"{data}/manifest.parquet has no num_persons column", "re-run `slim-ingest` with this code version")
    persons = table.column("num_persons").to_numpy().astype("float64")
    out = {"all": float(persons.mean())}
    for bench in meta.get("benchmarks", []):
        for split in ("train", "test"):
            col = f"{bench}_{split}"
            if col in table.column_names:
                sel = table.column(col).to_numpy(zero_copy_only=False).astype(bool)
                if sel.any():
                    out[col] = float(persons[sel].mean())
    return out


@click.command("flops")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset folder (manifest.parquet): also report the average per sample when absent persons are skipped.")
@click.option("--frames", type=int, default=64, show_default=True, help="Our input length (frames).")
@click.option("--dim", type=int, default=256, show_default=True)
@click.option("--depth", type=int, default=8, show_default=True)
@click.option("--heads", type=int, default=8, show_default=True)
@click.option("--registers", type=int, default=4, show_default=True)
@click.option("--ffn", type=click.Choice(["swiglu", "mlp"]), default="swiglu", show_default=True)
@click.option("--patch-t", type=int, default=8, show_default=True, help="Frames per patch.")
@click.option("--throughput/--no-throughput", default=False, show_default=True,
              help="Also measure CPU inference sequences/s of both encoders, side by side.")
@click.option("--batch", type=int, default=16, show_default=True, help="Samples per throughput batch.")
@click.option("--two-person-share", type=float, default=None,
              help="Share of two-person samples for our throughput (default: from --data, else 1.0 = worst case).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the figures here.")
def flops(data, frames, dim, depth, heads, registers, ffn, patch_t, throughput, batch, two_person_share, json_out):
    """GFLOPs (2 x multiply-adds, batch 1, encoder only) of our encoder and of MAMP's
    (T = 120, P_T = 4, no registers, GELU MLP, both persons always), built with the same code.

    \b
      slim-eval flops
      slim-eval flops --data data/ntu60 --throughput
    """
    import torch
    from rich.table import Table

    from slim.ingest.clitools import console, fail
    from slim.model.encoder import Encoder, EncoderConfig
    from slim.model.flops import encoder_gflops, person_mask_with_share, samples_per_second

    try:
        ours_cfg = EncoderConfig(dim=dim, depth=depth, heads=heads, registers=registers, ffn=ffn, patch_t=patch_t)
        if frames % patch_t:
            raise ValueError(f"--frames {frames} is not a multiple of --patch-t {patch_t}")
        ours = Encoder(ours_cfg).eval()
    except ValueError as e:
        fail(str(e), "choose sizes with dim divisible by heads and frames a multiple of patch-t")
    mamp = Encoder(EncoderConfig.mamp()).eval()
    fig = {"gflops_person": encoder_gflops(ours, frames)}
    fig["gflops_two_person"] = 2 * fig["gflops_person"]
    fig["gflops_mamp"] = 2 * encoder_gflops(mamp, 120)
    fig["flops_ratio_two_person"] = fig["gflops_mamp"] / fig["gflops_two_person"]
    persons = _dataset_persons(data) if data is not None else {}
    for split, mean_p in persons.items():
        fig[f"gflops_avg_{split}"] = mean_p * fig["gflops_person"]
        fig[f"persons_avg_{split}"] = mean_p

    if throughput:
        share = two_person_share if two_person_share is not None else (persons["all"] - 1.0 if persons else 1.0)
        torch.manual_seed(0)  # weights do not change the cost; seeded only so runs are alike
        fig["two_person_share"] = share
        fig["threads"] = torch.get_num_threads()
        fig["infer_seq_per_s_mamp"] = samples_per_second(mamp, 120, person_mask_with_share(batch, 1.0))
        fig["infer_seq_per_s"] = samples_per_second(ours, frames, person_mask_with_share(batch, share))
        fig["infer_ratio"] = fig["infer_seq_per_s"] / fig["infer_seq_per_s_mamp"]

    table = Table(title="encoder cost (FlopCounterMode, 2 x MACs, batch 1, encoder only)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k, v in fig.items():
        table.add_row(k, f"{v:.3f}" if isinstance(v, float) else str(v))
    console.print(table)
    console.print(f"ours: T={frames}, P_T={patch_t}, {dim}x{depth}x{heads} heads, {registers} registers, {ffn}; "
                  "MAMP: T=120, P_T=4, 256x8x8, GELU MLP, learned absolute positions, 2 persons always",
                  soft_wrap=True)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"protocol": "flops", "metrics": fig,
                                        "config": {"ours": ours_cfg.__dict__, "data": str(data) if data else None}},
                                       indent=2, sort_keys=True) + "\n")
