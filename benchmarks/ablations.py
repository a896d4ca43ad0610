"""Small-scale ablations on the synthetic dataset (`make bench ONLY=ablations`), with the
same code paths as the real recipe and only config switches:

- semantic tube masking vs random token masking (`pipeline.masking`),
- skeleton-aware augmentations vs none (`pipeline.augment`),
- MFM only vs GLCL only vs both (`model.glcl_weight`, `model.mfm_weight`).

Each variant pretrains the cpu-demo preset for `--epochs` x 20 steps (same seed), then
evaluates retrieval k=1 and linear accuracy on synthetic X-Sub, next to a random encoder
of the same architecture. Figures go to bench/results.json under `ablations`.
Expect about 5 minutes per variant on 2 CPU cores at the default 12 epochs.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

VARIANTS = {
    "full": (),
    "random_masking": ("pipeline.masking=random",),
    "no_augmentation": ("pipeline.augment=false",),
    "mfm_only": ("model.glcl_weight=0",),
    "glcl_only": ("model.mfm_weight=0",),
}


def _pretrain(data: Path, out: Path, sets: tuple[str, ...], epochs: int) -> None:
    cmd = [sys.executable, "-m", "slim.train.cli", "pretrain", "--data", str(data), "--benchmark", "xsub",
           "--preset", "cpu-demo", "--out", str(out), "--set", f"schedule.epochs={epochs}"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"pretraining {out} failed (exit {proc.returncode})")


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/synthetic", help="ingested synthetic dataset (make ingest DATASET=synthetic)")
    ap.add_argument("--runs", default="runs/ablations")
    ap.add_argument("--epochs", type=int, default=12, help="epochs of 20 steps per variant")
    ap.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    args = ap.parse_args(argv)

    from benchmarks.common import console, record
    from slim.eval import api

    data = Path(args.data)
    if not (data / "manifest.parquet").is_file():
        raise SystemExit(f"{data} is not an ingested dataset: run `make ingest DATASET=synthetic` first")
    figures = {"epochs": args.epochs, "steps": args.epochs * 20}
    for name in args.only:
        out = Path(args.runs) / name
        console.print(f"[bold]ablation {name}[/]: pretraining -> {out}")
        _pretrain(data, out, VARIANTS[name], args.epochs)
        r = api.retrieval(str(out), data_dir=str(data), benchmark="xsub", ks=(1,))
        lin = api.linear(str(out), data_dir=str(data), benchmark="xsub")
        figures[f"{name}.retrieval_k1"] = round(float(r["metrics"]["top1_k1"]), 2)
        figures[f"{name}.linear"] = round(float(lin["metrics"]["top1"]), 2)
        if name == "full":
            r = api.retrieval(str(out), data_dir=str(data), benchmark="xsub", ks=(1,), encoder="random:0")
            lin = api.linear(str(out), data_dir=str(data), benchmark="xsub", encoder="random:0")
            figures["random_encoder.retrieval_k1"] = round(float(r["metrics"]["top1_k1"]), 2)
            figures["random_encoder.linear"] = round(float(lin["metrics"]["top1"]), 2)
    record("ablations", figures)


if __name__ == "__main__":
    main(sys.argv[1:])
