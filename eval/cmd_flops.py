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


def run_architecture(run: Path | None, encoder: Path | None) -> tuple[dict, int, str]:
    """(EncoderConfig fields, input frames, where from) of a run (its config.toml) or an
    encoder file (its stored config); `fail`s with a hint when neither can be read."""
    from dataclasses import asdict

    from slim.ingest.clitools import fail
    if encoder is not None:
        from slim.model.io import load_encoder
        try:
            enc, _ = load_encoder(encoder)
        except (ValueError, FileNotFoundError) as e:
            fail(str(e), "pass --encoder runs/<name>/encoder.pt (written by `slim-train export`)")
        return asdict(enc.cfg), 64, str(encoder)
    from slim.train.config import from_toml_text
    path = Path(run) / "config.toml"
    if not path.is_file():
        fail(f"{run} is not a run folder (no config.toml)",
             "pass a folder made by `slim-train pretrain` (see `ls runs/`), or --encoder FILE")
    try:
        cfg = from_toml_text(path.read_text())
    except ValueError as e:
        fail(f"{path} cannot be read ({e})", "use the code version that wrote the run")
    return asdict(cfg.model.encoder), int(cfg.pipeline.global_len), str(path)


@click.command("flops")
@click.option("--run", "run", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Measure this pretraining run's encoder architecture (from its config.toml) "
                   "instead of the paper's; the size options below then override single fields.")
@click.option("--encoder", "encoder", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Measure the architecture stored in this encoder file (e.g. runs/<name>/encoder.pt).")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset folder (manifest.parquet): also report the average per sample when absent persons are skipped.")
@click.option("--frames", type=int, default=None, help="Our input length in frames [default: 64, or the run's].")
@click.option("--dim", type=int, default=None, help="Token width [default: 256, or the run's].")
@click.option("--depth", type=int, default=None, help="Transformer blocks [default: 8, or the run's].")
@click.option("--heads", type=int, default=None, help="Attention heads [default: 8, or the run's].")
@click.option("--registers", type=int, default=None, help="Register tokens [default: 4, or the run's].")
@click.option("--ffn", type=click.Choice(["swiglu", "mlp"]), default=None,
              help="Feed-forward kind: SwiGLU (ours) or GELU MLP [default: swiglu, or the run's].")
@click.option("--patch-t", type=int, default=None, help="Frames per patch [default: 8, or the run's].")
@click.option("--throughput/--no-throughput", default=False, show_default=True,
              help="Also measure CPU inference sequences/s of both encoders, side by side.")
@click.option("--batch", type=int, default=16, show_default=True, help="Samples per throughput batch.")
@click.option("--two-person-share", type=float, default=None,
              help="Share of two-person samples for our throughput (default: from --data, else 1.0 = worst case).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the figures here.")
def flops(run, encoder, data, frames, dim, depth, heads, registers, ffn, patch_t, throughput, batch,
          two_person_share, json_out):
    """GFLOPs (2 x multiply-adds, batch 1, encoder only) of our encoder and of MAMP's
    (T = 120, P_T = 4, no registers, GELU MLP, both persons always), built with the same code.

    \b
      slim-eval flops                          # the paper's architecture
      slim-eval flops --run runs/demo          # that run's architecture
      slim-eval flops --data data/ntu60 --throughput
    """
    import torch
    from rich.table import Table

    from slim.ingest.clitools import console, fail
    from slim.model.encoder import Encoder, EncoderConfig
    from slim.model.flops import encoder_gflops, person_mask_with_share, samples_per_second

    if run is not None and encoder is not None:
        fail("--run and --encoder both given", "pass one of them")
    fields, run_frames, source = ({}, 64, "the paper's architecture") if run is None and encoder is None \
        else run_architecture(run, encoder)
    given = {"dim": dim, "depth": depth, "heads": heads, "registers": registers, "ffn": ffn, "patch_t": patch_t}
    fields.update({k: v for k, v in given.items() if v is not None})
    frames = frames if frames is not None else run_frames
    console.print(f"[dim]ours: {source}[/]")
    try:
        ours_cfg = EncoderConfig(**fields)
        if frames % ours_cfg.patch_t:
            raise ValueError(f"--frames {frames} is not a multiple of --patch-t {ours_cfg.patch_t}")
        ours = Encoder(ours_cfg).eval()
    except (TypeError, ValueError) as e:
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
