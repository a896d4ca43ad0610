"""`make bench ONLY=train`: pretraining throughput (samples/s, global) of the real loop
(pipeline workers, forward, backward, AdamW, EMA) on a small synthetic dataset, for the
cpu-demo model ("tiny") and the paper's model ("default", at a small batch on CPU).

Each size runs `--steps` steps; the figure is the median of the per-step samples/s
logged after the first `--skip` steps (start-up and warm-up excluded)."""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch
from rich.console import Console

from benchmarks.common import record


def _dataset(root: Path) -> Path:
    from slim.ingest.run import ingest
    from slim.ingest.synth import SynthConfig, generate
    generate(root / "raw", SynthConfig(classes=8, performers=6, per_class=2, seed=0), progress=False)
    return ingest("synthetic", root / "raw", root / "data", workers=0)


def measure(data: Path, run_dir: Path, preset: str, batch: int, steps: int, skip: int, workers: int) -> dict:
    from slim.train import config as C
    from slim.train.configtools import parse_set
    from slim.train.trainer import pretrain

    sets = [f"data.global_batch={batch}", "schedule.epochs=1", f"schedule.epoch_steps={steps}",
            "schedule.warmup_epochs=0.5", f"checkpoint.every_steps={steps}", "checkpoint.keep_last=1",
            "run.log_every=1", "run.tensorboard=false", f"data.num_workers={workers}", "run.device=auto"]
    cfg = C.resolve(preset, cli_overrides=parse_set(sets))
    pretrain(cfg, data_dir=data, benchmark="xsub", run_dir=run_dir, preset=preset, console=Console(quiet=True))
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()][skip:]
    return {"samples_per_s": statistics.median(r["samples_per_s"] for r in rows),
            "data_wait": statistics.median(r["data_wait"] for r in rows),
            "memory_mb": max(r["memory_mb"] for r in rows)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=6, help="steps of the tiny model")
    ap.add_argument("--default-steps", type=int, default=3,
                    help="steps of the paper-size model (seconds each on CPU)")
    ap.add_argument("--skip", type=int, default=1, help="first steps left out of the median")
    ap.add_argument("--tiny-batch", type=int, default=16)
    ap.add_argument("--default-batch", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="DataLoader workers")
    args = ap.parse_args(argv or [])
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        root = Path(tmp)
        data = _dataset(root)
        tiny = measure(data, root / "tiny", "cpu-demo", args.tiny_batch, args.steps, args.skip, args.workers)
        default = measure(data, root / "default", "paper", args.default_batch, args.default_steps, args.skip,
                          args.workers)
    record("train", {
        "samples_per_s": default["samples_per_s"],
        "samples_per_s_default": default["samples_per_s"],
        "samples_per_s_tiny": tiny["samples_per_s"],
        "data_wait_default": default["data_wait"],
        "data_wait_tiny": tiny["data_wait"],
        "peak_memory_mb_default": default["memory_mb"],
        "batch_default": args.default_batch,
        "batch_tiny": args.tiny_batch,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(),
    })


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
