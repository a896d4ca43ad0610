"""Pipeline throughput: the full pretraining transform (2 global + 12 local views,
augmentations, masks) in samples/s per CPU core, single-process and with 2 DataLoader
workers, the time split per stage, and a naive per-view / per-joint / per-tube Python
loop implementation of the same transform measured in the same run as the baseline.

"Per core" is measured in CPU time: samples per CPU-second consumed by the processes
doing the work (time.process_time of this process, plus the CPU time of the exited
DataLoader workers from getrusage(RUSAGE_CHILDREN)). Unlike wall time this does not
depend on what else runs on the machine. `samples_per_s_per_core` and
`samples_per_s_per_core_2workers` are these CPU-time figures; the wall-clock figures of
the same runs are recorded as `wall_*` (wall samples/s, and for 2 workers also divided
by 2), and `load_avg_1min` says how busy the machine was. Stage times are CPU time.

    .venv/bin/python -m benchmarks.pipeline [--samples 512] [--batch 64] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from slim.ingest.h5store import H5Writer
from slim.ingest.manifest import write_manifest
from slim.ingest.topology import NTU25

# NTU-format data: the ntu25 layout.
CENTER_JOINT = NTU25.center_joint
GROUPS = NTU25.group_dict
MIRROR_PERM = NTU25.mirror_perm
PARENTS = NTU25.parents
TOPO_ORDER = NTU25.topo_order
from slim.pipeline.config import PipelineConfig
from slim.pipeline.loader import build_pretrain_loader, to_torch
from slim.pipeline.sources import H5Dataset
from slim.pipeline.transform import pretrain_batch

from .common import record


def make_data(root: Path, n: int, rng: np.random.Generator) -> Path:
    """n NTU-like samples: 40-200 frames, a third with two persons (metres)."""
    data = root / "bench"
    with H5Writer(data / "samples.h5", dataset="bench", ingest_version="bench",
                  normalization="centre", layout="kinect-v2-25") as w:
        frames, persons = [], []
        for i in range(n):
            t, m = int(rng.integers(40, 201)), 1 + int(i % 3 == 0)
            w.append(f"B{i:06d}", i % 60, rng.normal(scale=0.3, size=(t, m, 25, 3)).astype(np.float32))
            frames.append(t)
            persons.append(m)
    table = pa.table({"index": np.arange(n, dtype=np.int64), "id": [f"B{i:06d}" for i in range(n)],
                      "label": np.arange(n, dtype=np.int16) % 60, "num_frames": frames,
                      "num_persons": persons, "xsub_train": np.ones(n, dtype=bool)})
    write_manifest(data, table, {"dataset": "bench", "ingest_version": "bench",
                                 "normalization": "centre", "benchmarks": ["xsub"],
                                 "num_classes": 60, "class_names": [str(i) for i in range(60)],
                                 "layout": "kinect-v2-25"})
    return data


# --- the baseline: one view, one joint, one tube at a time ----------------------------

def _naive_resample(x: np.ndarray, start: int, length: int, n: int) -> np.ndarray:
    crop = torch.from_numpy(x[start:start + length]).permute(1, 2, 0).reshape(1, -1, length)
    out = torch.nn.functional.interpolate(crop, size=n, mode="linear", align_corners=False)
    return out.reshape(x.shape[1], x.shape[2], n).permute(2, 0, 1).numpy()


def _naive_augment(x: np.ndarray, cfg: PipelineConfig, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < cfg.p_rotate:
        a, g = np.deg2rad(rng.uniform(-cfg.rot_xz_deg, cfg.rot_xz_deg, 2))
        b = np.deg2rad(rng.uniform(-cfg.rot_y_deg, cfg.rot_y_deg))
        rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
        rz = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])
        x = x @ (rz @ ry @ rx).T.astype(np.float32)
    if rng.random() < cfg.p_mirror:
        x = x[:, MIRROR_PERM].copy()
        x[..., 0] *= -1
    if rng.random() < cfg.p_scale:
        s = np.ones(25)
        for joints in GROUPS.values():
            s[list(joints)] = rng.uniform(*cfg.scale_range)
        bones = {j: x[:, j] - x[:, PARENTS[j]] for j in TOPO_ORDER if PARENTS[j] >= 0}
        out = x.copy()
        for j in TOPO_ORDER:  # per joint, parent before child
            if PARENTS[j] >= 0:
                out[:, j] = out[:, PARENTS[j]] + s[j] * bones[j]
        x = out
    return x


def _naive_tube_mask(grid_t: int, cfg: PipelineConfig, rng: np.random.Generator) -> np.ndarray:
    n = grid_t * 25
    target = round(rng.uniform(*cfg.mask_ratio) * n)
    a_min, a_max = cfg.a_min_for(grid_t), cfg.a_max_frac * n
    m = np.zeros((grid_t, 25), dtype=bool)
    groups = list(GROUPS.values())
    while m.sum() < target:  # one tube at a time
        g = groups[rng.integers(len(groups))]
        w = int(rng.integers(1, len(g) + 1))
        s = int(rng.integers(0, len(g) - w + 1))
        p_max = min(target - m.sum(), a_max)
        area = rng.uniform(a_min, p_max) if p_max > a_min else p_max
        h = int(min(max(round(area / w), 1), grid_t))
        t0 = int(rng.integers(0, grid_t - h + 1))
        m[t0:t0 + h, list(g[s:s + w])] = True
    return m.reshape(-1)


def naive_sample(x: np.ndarray, cfg: PipelineConfig, rng: np.random.Generator) -> list:
    """The same transform, one sample and one view at a time."""
    x = x[:, int(rng.integers(x.shape[1]))]
    present = np.flatnonzero(np.any(x != 0, axis=(1, 2)))
    first, length = int(present[0]), int(present[-1] - present[0] + 1)
    x = x - x[first, CENTER_JOINT]
    out = []
    for _ in range(2):
        gl = max(1, round(rng.uniform(*cfg.global_ratio) * length))
        gs = first + int(rng.integers(0, length - gl + 1))
        v = _naive_augment(_naive_resample(x, gs, gl, cfg.global_len), cfg, rng)
        out.append((v, _naive_tube_mask(cfg.global_len // cfg.patch_t, cfg, rng)))
        for n, count, ratio in zip(cfg.local_lens, cfg.local_counts, cfg.local_ratios):
            for _ in range(count):
                ll = max(1, round(rng.uniform(*ratio) * gl))
                ls = gs + int(rng.integers(0, gl - ll + 1))
                v = _naive_augment(_naive_resample(x, ls, ll, n), cfg, rng)
                m = (_naive_tube_mask(n // cfg.patch_t, cfg, rng) if rng.random() < cfg.mask_local_p
                     else np.zeros(n // cfg.patch_t * 25, dtype=bool))
                out.append((v, m))
    return out


# --- measurements ---------------------------------------------------------------------

def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def loader_rate(data: Path, cfg: PipelineConfig, batch: int, steps: int, workers: int
                ) -> tuple[float, float]:
    """(samples per CPU-second, wall samples/s) of the full loader (read, transform,
    collate). Wall time is taken after one warm-up batch per worker; CPU time counts
    every batch, this process's and the workers' (read once they have exited), so
    worker start-up is included in it (a small, pessimistic share)."""
    cpu0, child0 = time.process_time(), _children_cpu()
    ld = build_pretrain_loader(data, "xsub", cfg, batch, seed=0, num_workers=workers,
                               end_step=steps + 1 + 2 * workers)
    it = iter(ld)
    n_all = 0
    for _ in range(1 + 2 * workers):  # warm-up: workers started and their first batch done
        n_all += len(next(it)["ids"])
    t0 = time.perf_counter()
    n = sum(len(b["ids"]) for b in it)
    wall = n / (time.perf_counter() - t0)
    del it, ld  # workers exit (persistent_workers=False) and are reaped
    cpu = time.process_time() - cpu0 + _children_cpu() - child0
    return (n_all + n) / cpu, wall


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="benchmarks.pipeline")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-samples", type=int, default=64)
    args = ap.parse_args(argv or [])
    torch.set_num_threads(1)  # figures are per core
    cfg = PipelineConfig()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp), args.samples, rng)
        ds = H5Dataset(data, split="xsub_train")
        steps = args.samples // args.batch

        # CPU time split per stage over every batch of the data, median over repeats.
        stages = {k: [] for k in ("read", "views", "augment", "mask", "collate")}
        for r in range(args.repeats):
            acc = dict.fromkeys(stages, 0.0)
            for s in range(steps):
                t0 = time.process_time()
                items = [ds[i] for i in range(s * args.batch, (s + 1) * args.batch)]
                acc["read"] += time.process_time() - t0
                out = pretrain_batch([it["joints"] for it in items], cfg,
                                     np.random.default_rng([r, s]), timings=acc,
                                     clock=time.process_time)
                t0 = time.process_time()
                to_torch(out, items)
                acc["collate"] += time.process_time() - t0
            for k in stages:
                stages[k].append(acc[k] / (steps * args.batch))
        per_sample = {k: statistics.median(v) for k, v in stages.items()}

        runs1 = [loader_rate(data, cfg, args.batch, steps, 0) for _ in range(args.repeats)]
        runs2 = [loader_rate(data, cfg, args.batch, 2 * steps, 2) for _ in range(args.repeats)]
        single, single_wall = (statistics.median(v) for v in zip(*runs1))
        two_cpu, two_wall = (statistics.median(v) for v in zip(*runs2))

        samples = [ds[i]["joints"] for i in range(args.baseline_samples)]
        base_rng = np.random.default_rng(1)
        times = []
        for _ in range(args.repeats):
            t0 = time.process_time()
            for x in samples:
                naive_sample(x, cfg, base_rng)
            times.append(time.process_time() - t0)
        baseline = len(samples) / statistics.median(times)

    figures = {
        # CPU-time based (samples per CPU-second): the target's "per core" figures.
        "samples_per_s_per_core": single,
        "samples_per_s_per_core_2workers": two_cpu,
        "per_core_definition": "samples per CPU-second (process_time + worker rusage)",
        # Wall clock of the same runs (depend on machine load, see load_avg_1min).
        "wall_samples_per_s_single_process": single_wall,
        "wall_samples_per_s_2workers": two_wall,
        "wall_samples_per_s_per_core_2workers": two_wall / 2,
        "load_avg_1min": os.getloadavg()[0],
        "cpu_cores": os.cpu_count(),
        "baseline_naive_samples_per_s_per_core": baseline,
        "baseline_ratio": single / baseline,
        "batch_size": args.batch,
        "views_per_sample": 2 + 2 * sum(cfg.local_counts),
        **{f"stage_{k}_cpu_us_per_sample": v * 1e6 for k, v in per_sample.items()},
        "transform_only_samples_per_cpu_s": 1.0 / sum(per_sample[k] for k in ("views", "augment", "mask")),
    }
    record("pipeline", figures)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
