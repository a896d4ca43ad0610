"""Ingest speed and memory: end-to-end files/s with 2 workers on NTU-size files, the
vectorized reader against a plain line-by-line reader (same files, same process), and
peak RSS. `python -m benchmarks.ingest [--files N] [--repeats R]`."""
from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from slim.ingest.ntu_reader import parse_ntu
from slim.ingest.run import IngestConfig, run


def line_reader(data: bytes) -> dict:
    """Baseline: the reference's way, one line at a time, floats one by one."""
    lines = data.decode().splitlines()
    n, p, bodies = int(lines[0]), 1, {}
    for _ in range(n):
        nb = int(lines[p]); p += 1
        for _ in range(nb):
            bid = lines[p].split()[0]; p += 1
            nj = int(lines[p]); p += 1
            joints = np.zeros((nj, 3), np.float32)
            for j in range(nj):
                joints[j] = np.array(lines[p].split()[:3], dtype=np.float32)
                p += 1
            bodies.setdefault(bid, []).append(joints)
    return bodies


def make_files(folder: Path, n_files: int) -> list[Path]:
    """NTU-format files from the synthetic generator (real sizes, 40-160 frames, 1-2
    bodies); generated once and reused."""
    from slim.ingest.synth import SynthConfig, generate
    files = sorted(folder.rglob("*.skeleton"))
    if len(files) < n_files:
        per_perf = 3
        performers = max(3, -(-n_files // (16 * 2 * per_perf)))
        generate(folder, SynthConfig(classes=16, performers=performers, per_class=2), progress=False)
        files = sorted(folder.rglob("*.skeleton"))
    return files[:n_files]


def main(argv: list[str] | None = None) -> None:
    # Imported here: spawned ingest workers import this module as __main__, and rich
    # (via benchmarks.common) would add to every worker's start-up.
    from benchmarks.common import median_time, record
    ap = argparse.ArgumentParser(prog="benchmarks.ingest")
    ap.add_argument("--files", type=int, default=480)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "slim-bench-ingest-raw"),
                    help="where the generated raw files are kept between runs")
    args = ap.parse_args(argv or [])
    files = make_files(Path(args.cache), args.files)
    raw = Path(tempfile.mkdtemp(prefix="slim-bench-raw-"))
    for f in files:
        (raw / f.name).symlink_to(f.resolve())
    blobs = [f.read_bytes() for f in files]
    mean_kb = float(np.mean([len(b) for b in blobs]) / 1024)
    sample = blobs[: min(60, len(blobs))]
    t_fast = median_time(lambda: [parse_ntu(b) for b in sample], repeats=args.repeats)
    t_base = median_time(lambda: [line_reader(b) for b in sample], repeats=args.repeats, warmup=0)
    times = []
    for _ in range(args.repeats):
        out = Path(tempfile.mkdtemp(prefix="slim-bench-out-"))
        t0 = time.perf_counter()
        run(IngestConfig("synthetic", (str(raw),), str(out), workers=args.workers),
            progress=False, log=lambda s: None)
        times.append(time.perf_counter() - t0)
        shutil.rmtree(out)
    shutil.rmtree(raw)
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    files_per_s = len(files) / float(np.median(times))
    record("ingest", {
        "files_per_s": files_per_s,
        "baseline_ratio": t_base / t_fast,
        "peak_rss_mb": rss,
        "parse_ms_per_file": 1000 * t_fast / len(sample),
        "baseline_parse_ms_per_file": 1000 * t_base / len(sample),
        "mean_file_kb": mean_kb,
        "files": len(files),
        "workers": args.workers,
        "ntu120_minutes_at_this_rate": 113945 / files_per_s / 60,
    })


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
