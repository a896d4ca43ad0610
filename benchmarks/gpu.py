"""`make bench-gpu`: the paper recipe on one GPU, in one script (under 8 minutes on an
H100/H200), written to bench/results.json under "gpu" (or "gpu_cpu" for a CPU run).

Measured, with bf16 autocast at the paper preset (per-GPU batch 192, the real pipeline
with `--workers` DataLoader workers, pinned memory, non-blocking copies):
  - eager and `torch.compile`d training steps (the trainer's step: forward_loss,
    backward, last-layer handling, per-module clipping, AdamW, EMA): samples/s, step
    time, data wait (share of the window the loop waited for the loader), peak device
    memory;
  - model FLOPs utilisation: FLOPs of one step counted by FlopCounterMode (forward +
    backward + teacher) over the step time and the device's dense bf16 peak
    (`--peak-tflops`, known for A100/H100/H200); `mfu` counts the model's FLOPs (exact
    masked tokens), `hfu` also the MFM heads' padding rows that the static-shape step
    computes;
  - feature extraction for evaluation (`encode_sample`, two persons, no grad, bf16);
  - one process in an NCCL process group under DistributedDataParallel, eager (the
    gradient all-reduce path of a multi-GPU run; its rate over the plain eager rate is
    `ddp1_efficiency`);
  - the projected wall time of the full recipe (187,500 steps at global batch 768,
    PROTOCOLS "Pretraining") on 1 GPU (best rate) and on 4 (4 x the best rate x
    ddp1_efficiency: the all-reduce between GPUs is not measured here, so optimistic).
Goal (issue 15): the full recipe in at most 12 hours on one H100/H200 (at least 3,400
samples/s) with data wait under 5 %.

On a CPU (`--device cpu --steps 3`, run by the test suite so the script cannot rot) the
defaults shrink: the tiny model, batch 4, no workers, gloo instead of NCCL and the
"aot_eager" compile backend (same graph capture, no code generation).

`python -m benchmarks.gpu [--device auto|cuda|cpu] [--steps N] [--warmup N] [--batch B]
[--workers W] [--size paper|tiny] [--backend inductor|aot_eager] [--data DIR]
[--results PATH]`"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS, record

#: Dense bf16 peak TFLOP/s (no sparsity) by device name, for MFU.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0}
PAPER_STEPS, PAPER_GLOBAL_BATCH = 187_500, 768


def _peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _dataset(root: Path) -> Path:
    from slim.ingest.run import ingest
    from slim.ingest.synth import SynthConfig, generate
    generate(root / "raw", SynthConfig(classes=8, performers=6, per_class=2, seed=0), progress=False)
    return ingest("synthetic", root / "raw", root / "data", workers=0)


def _config(size: str):
    from slim.train import config as C
    return C.resolve("paper" if size == "paper" else "cpu-smoke")


def _model(cfg, device):
    from slim.model.slim import SLiM
    from slim.train.param_groups import build_param_groups
    model = SLiM(cfg.model, torch.Generator().manual_seed(0)).to(device)
    opt = torch.optim.AdamW(build_param_groups(model.param_groups_spec()), lr=1e-4, weight_decay=0.04,
                            betas=(cfg.optim.beta1, cfg.optim.beta2))
    return model, opt


def _loader(data: Path, cfg, batch: int, workers: int, device: torch.device, steps: int):
    from slim.pipeline.loader import build_pretrain_loader
    return iter(build_pretrain_loader(data, "xsub", cfg.pipeline, batch, seed=0, num_workers=workers,
                                      epoch_samples=batch * (steps + 8), pin_memory=device.type == "cuda",
                                      prefetch=cfg.data.prefetch, end_step=steps))


def _step(net, model, opt, batch, device, autocast, clip: float):
    """One training step as the trainer runs it (slim.train.trainer.pretrain)."""
    from slim.train.trainer import _clip, to_device
    temp = torch.full((), 0.05, dtype=torch.float32, device=device)
    with autocast:
        out = net(to_device(batch, device), temp)
    opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    _clip(model, clip)
    opt.step()
    model.update_teacher(0.994)
    return out


def measure_training(data, cfg, device, batch, workers, steps, warmup, compile_backend=None,
                     ddp: bool = False) -> dict:
    """Samples/s, step time, data wait and peak memory of `steps` steps after `warmup`
    (compilation happens in the warm-up)."""
    from slim.train.metrics import memory_mb
    from slim.train.trainer import autocast_for
    model, opt = _model(cfg, device)
    net = model
    if ddp:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index or 0] if device.type == "cuda" else None)
    if compile_backend:
        net = torch.compile(net, backend=compile_backend)
    autocast = autocast_for(device, "bf16", amp_cpu=True)
    batches = _loader(data, cfg, batch, workers, device, warmup + steps)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_compile = time.perf_counter()
    for _ in range(warmup):
        out = _step(net, model, opt, next(batches), device, autocast, cfg.optim.clip_grad)
    float(out["loss"].detach())
    _sync(device)
    warm_s = time.perf_counter() - t_compile
    wait, losses = 0.0, []
    t0 = time.perf_counter()
    for _ in range(steps):
        tw = time.perf_counter()
        b = next(batches)
        wait += time.perf_counter() - tw
        losses.append(_step(net, model, opt, b, device, autocast, cfg.optim.clip_grad)["loss"].detach())
    _sync(device)
    elapsed = time.perf_counter() - t0
    final = [float(x) for x in losses]
    return {"samples_per_s": steps * batch / elapsed, "step_ms": 1000 * elapsed / steps,
            "data_wait": wait / elapsed, "peak_memory_mb": memory_mb(device), "warmup_s": warm_s,
            "finite": all(x == x and abs(x) != float("inf") for x in final)}


def step_flops(cfg, device, batch: int) -> tuple[float, float]:
    """FLOPs of one training step per sample (forward of student and teacher, backward),
    counted by FlopCounterMode on a batch of `batch` random sequences through the real
    transform: (with the MFM heads' padding rows, as computed; without them, the model
    FLOPs of the exact masked-token gather)."""
    import numpy as np
    from torch.utils.flop_counter import FlopCounterMode

    from slim.pipeline.loader import to_torch
    from slim.pipeline.transform import pretrain_batch
    from slim.train.trainer import to_device
    rng = np.random.default_rng(0)
    samples = [np.asarray(rng.normal(size=(100, 1, 25, 3)) * 0.3, dtype=np.float32) for _ in range(batch)]
    items = [{"index": i, "label": 0, "id": str(i)} for i in range(batch)]
    padded = to_torch(pretrain_batch(samples, cfg.pipeline, rng), items, cfg.pipeline)
    exact = {k: v for k, v in padded.items() if k not in ("mfm_index", "mfm_weight")}
    model, _ = _model(cfg, device)
    for enc in (model.student, model.teacher):
        enc.set_fused_attention(False)  # explicit matmuls: visible to the counter
    counts = []
    for b in (padded, exact):
        with FlopCounterMode(display=False) as counter:
            out = model.forward_loss(to_device(b, device), torch.tensor(0.05, device=device))
            out["loss"].backward()
        counts.append(counter.get_total_flops() / batch)
        model.zero_grad(set_to_none=True)
    return counts[0], counts[1]


def measure_features(cfg, device, batch: int, repeats: int) -> float:
    """Samples/s of `encode_sample` (two persons, 64 frames, cls+mean) under bf16 autocast."""
    from slim.model.encoder import Encoder, encode_sample
    from slim.train.trainer import autocast_for
    enc = Encoder(cfg.model.encoder, torch.Generator().manual_seed(0)).to(device).eval()
    x = torch.randn(batch, 2, 64, cfg.model.encoder.num_joints, 3, device=device)
    pm = torch.ones(batch, 2, dtype=torch.bool, device=device)
    with torch.no_grad(), autocast_for(device, "bf16", amp_cpu=True):
        encode_sample(enc, x, pm)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            encode_sample(enc, x, pm)
        _sync(device)
    return repeats * batch / (time.perf_counter() - t0)


def _init_one_process_group(device: torch.device, root: Path) -> str:
    import torch.distributed as dist
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"file://{root / 'pg'}", rank=0, world_size=1)
    return backend


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    ap.add_argument("--steps", type=int, default=None, help="measured steps per mode (cuda 40, cpu 3)")
    ap.add_argument("--warmup", type=int, default=None, help="steps before measuring (cuda 8, cpu 1)")
    ap.add_argument("--batch", type=int, default=None, help="per-GPU batch (cuda 192 = 768 / 4, cpu 4)")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (cuda 8, cpu 0)")
    ap.add_argument("--size", choices=["paper", "tiny"], default=None, help="model (cuda paper, cpu tiny)")
    ap.add_argument("--backend", default=None, help="torch.compile backend (cuda inductor, cpu aot_eager)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the device, for MFU")
    ap.add_argument("--data", default=None, help="an ingested dataset (default: a small synthetic one)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: compiled,ddp,features")
    ap.add_argument("--results", default=str(RESULTS), help="results file (default bench/results.json)")
    args = ap.parse_args(argv)
    kind = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device("cuda", 0) if kind == "cuda" else torch.device("cpu")
    gpu = device.type == "cuda"
    steps = args.steps or (40 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else (8 if gpu else 1)
    batch = args.batch or (192 if gpu else 4)
    workers = args.workers if args.workers is not None else (min(8, max((os.cpu_count() or 2) - 2, 1)) if gpu else 0)
    size = args.size or ("paper" if gpu else "tiny")
    backend = args.backend or ("inductor" if gpu else "aot_eager")
    skip = {s for s in args.skip.split(",") if s}
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg = _config(size)
    t_start = time.perf_counter()
    figures: dict = {"device": torch.cuda.get_device_name(device) if gpu else "cpu", "model": size,
                     "batch_per_gpu": batch, "workers": workers, "steps": steps, "warmup": warmup,
                     "amp": "bf16", "compile_backend": backend}
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        root = Path(tmp)
        data = Path(args.data) if args.data else _dataset(root)
        from slim.train.trainer import with_data_layout
        cfg, figures["layout"] = with_data_layout(cfg, data)  # the encoder's joints from the data
        eager = measure_training(data, cfg, device, batch, workers, steps, warmup)
        figures.update({f"eager_{k}": v for k, v in eager.items()})
        best = eager
        if "compiled" not in skip:
            comp = measure_training(data, cfg, device, batch, workers, steps, warmup, compile_backend=backend)
            figures.update({f"compiled_{k}": v for k, v in comp.items()})
            best = comp if comp["samples_per_s"] > eager["samples_per_s"] else eager
        flops, model_flops = step_flops(cfg, device, batch)  # at the measured batch: its padding
        peak = _peak_tflops(device, args.peak_tflops)
        figures["train_gflops_per_sample"] = flops / 1e9
        figures["train_gflops_per_sample_unpadded"] = model_flops / 1e9
        figures["peak_tflops"] = peak
        # MFU on the model FLOPs (padding rows not counted as useful work); hfu with them
        figures["mfu"] = best["samples_per_s"] * model_flops / (peak * 1e12) if peak else None
        figures["hfu"] = best["samples_per_s"] * flops / (peak * 1e12) if peak else None
        if "features" not in skip:
            figures["features_samples_per_s"] = measure_features(cfg, device, 256 if gpu else 8, 20 if gpu else 2)
        ddp_eff = None
        if "ddp" not in skip:
            import torch.distributed as dist
            figures["ddp_backend"] = _init_one_process_group(device, root)
            try:  # eager: the NCCL path, without a second compilation (time budget)
                ddp = measure_training(data, cfg, device, batch, workers, steps, warmup, ddp=True)
            finally:
                dist.destroy_process_group()
            figures.update({f"ddp1_{k}": v for k, v in ddp.items()})
            ddp_eff = ddp["samples_per_s"] / eager["samples_per_s"]
            figures["ddp1_efficiency"] = ddp_eff
    samples = PAPER_STEPS * PAPER_GLOBAL_BATCH
    figures["best"] = "compiled" if best is not eager else "eager"
    figures["projected_hours_1gpu"] = samples / best["samples_per_s"] / 3600
    # 4 GPUs: 4 x the best rate x the DDP overhead of one process (inter-GPU all-reduce
    # not measured: an optimistic projection).
    figures["projected_hours_4gpu"] = samples / (4 * best["samples_per_s"] * min(ddp_eff or 1.0, 1.0)) / 3600
    figures["goal_met"] = bool(gpu and best["samples_per_s"] >= 3400 and best["data_wait"] < 0.05)
    figures["bench_wall_s"] = time.perf_counter() - t_start
    record("gpu" if gpu else "gpu_cpu", figures, Path(args.results))
    return figures


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
