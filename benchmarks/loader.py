"""`make bench ONLY=loader`: what a GPU would receive. The rate of pretraining batches at
the DataLoader's output (read, transform, masks, the collate's masked-token index, IPC
to the main process) at the paper's per-GPU batch (192 = 768 / 4) and pipeline, with 1
and 2 workers (persistent, prefetch 4), in samples/s per worker.

Two figures per run: wall-clock samples/s at the output after a warm-up (what a GPU
sees; depends on what else runs on the machine, see load_avg_1min), and samples per
CPU-second of all processes involved (this process and the workers, from process_time
and getrusage(RUSAGE_CHILDREN); independent of the load: the cost of a sample). The
single-process transform (no worker, no IPC) is measured in the same process as the
baseline, so `ipc_overhead` compares like with like. Pinned memory needs CUDA: on a
CPU-only machine the batches are not pinned (the copy cost of pinning is not counted).

    .venv/bin/python -m benchmarks.loader [--batch 192] [--steps 8] [--samples 1024]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from slim.pipeline.config import PipelineConfig
from slim.pipeline.loader import build_pretrain_loader

from .common import record
from .pipeline import _children_cpu, make_data


def output_rate(data: Path, cfg: PipelineConfig, batch: int, steps: int, workers: int,
                prefetch: int = 4) -> dict:
    """Wall samples/s at the loader's output over `steps` batches after one warm-up batch
    per worker (workers started), and samples per CPU-second over all batches (the
    workers' CPU is read once they have exited)."""
    warm = max(workers, 1)
    cpu0, child0 = time.process_time(), _children_cpu()
    ld = build_pretrain_loader(data, "xsub", cfg, batch, seed=0, num_workers=workers, prefetch=prefetch,
                               epoch_samples=batch * (steps + warm + 1), end_step=steps + warm,
                               pin_memory=torch.cuda.is_available())
    it = iter(ld)
    for _ in range(warm):
        next(it)
    t0 = time.perf_counter()
    n = sum(len(b["ids"]) for b in it)
    wall = n / (time.perf_counter() - t0)
    del it, ld  # workers exit and are reaped: their CPU time is in RUSAGE_CHILDREN
    cpu = time.process_time() - cpu0 + _children_cpu() - child0
    return {"wall": wall, "cpu": (n + warm * batch) / cpu}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="benchmarks.loader")
    ap.add_argument("--batch", type=int, default=192)
    ap.add_argument("--steps", type=int, default=8, help="measured batches per run")
    ap.add_argument("--samples", type=int, default=1024)
    args = ap.parse_args(argv or [])
    torch.set_num_threads(1)
    cfg = PipelineConfig()  # the paper's pipeline (2 global + 12 local views, tube masks)
    figures: dict = {"batch": args.batch, "steps": args.steps, "cpu_cores": os.cpu_count(),
                     "load_avg_1min_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp), args.samples, np.random.default_rng(0))
        base = output_rate(data, cfg, args.batch, args.steps, 0)
        figures["baseline_single_process_samples_per_s"] = base["wall"]
        figures["baseline_single_process_samples_per_cpu_s"] = base["cpu"]
        for w in (1, 2):
            r = output_rate(data, cfg, args.batch, args.steps, w)
            figures[f"workers{w}_samples_per_s"] = r["wall"]
            figures[f"workers{w}_samples_per_s_per_worker"] = r["wall"] / w
            figures[f"workers{w}_samples_per_cpu_s"] = r["cpu"]
            figures[f"workers{w}_ratio_to_baseline"] = r["wall"] / base["wall"]
        figures["ipc_overhead"] = 1.0 - figures["workers1_samples_per_cpu_s"] / base["cpu"]
    figures["load_avg_1min_after"] = os.getloadavg()[0]
    record("loader", figures)
    return figures


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
