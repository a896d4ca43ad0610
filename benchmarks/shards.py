"""`make bench ONLY=shards`: the shard encodings (`slim-ingest --shard-encoding`) on the
benchmarks' synthetic NTU-format set: shard bytes per sample (extrapolated to NTU-120's
113,945 samples x 2 benchmarks, each sample stored once per benchmark), read speed of
the pretraining reader (fetch a whole shard, check size + sha256 against shards.json,
untar, decode to float32: `ShardReader.read` + `_decode`, one process, encodings
interleaved over the repeats so machine load hits all alike; wall samples/s and samples
per CPU-second of the process, the latter independent of the load), and the float16 error
measured against samples.h5 (max |error| in mm, and max |error| / |x| over the values
in float16's normal range, |x| >= 2^-14 m; below it the error is under 2^-25 m).

Only the first `--files` generated files are ingested (the same files for every
encoding); figures are per sample, so the NTU-120 extrapolation assumes the same
frames-per-sample mix (the synthetic files have 40-160 frames, NTU-120's mean is ~83 -
see the `mean_frames` figure).

    .venv/bin/python -m benchmarks.shards [--files 960] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from slim.ingest.h5store import H5Samples
from slim.ingest.run import IngestConfig, run
from slim.ingest.shards import ENCODINGS
from slim.pipeline.shardset import ShardReader, resolve
from slim.pipeline.sources import _decode

from .ingest import make_files

NTU120 = 113945


def read_all(folder: Path) -> tuple[int, float, float]:
    """(samples, wall seconds, CPU seconds of this process) to read and decode every
    shard of a split folder."""
    reader = ShardReader(resolve("", folder))
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for i in range(len(reader.shards.urls)):
        for s in reader.read(i):
            _decode(s)
            n += 1
    return n, time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.common import record
    ap = argparse.ArgumentParser(prog="benchmarks.shards")
    ap.add_argument("--files", type=int, default=960)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "slim-bench-ingest-raw"))
    args = ap.parse_args(argv or [])
    files = make_files(Path(args.cache), args.files)
    root = Path(tempfile.mkdtemp(prefix="slim-bench-shards-"))
    raw = root / "raw"
    raw.mkdir()
    for f in files:
        (raw / f.name).symlink_to(f.resolve())
    figures: dict = {"files": len(files)}
    outs = {}
    try:
        for enc in ENCODINGS:
            t0 = time.perf_counter()
            out, card = run(IngestConfig("synthetic", (str(raw),), str(root / enc), workers=args.workers,
                                         shard_encoding=enc), progress=False, log=lambda s: None)
            figures[f"{enc}_ingest_s"] = time.perf_counter() - t0
            outs[enc] = out
            tars = list((out / "shards").rglob("*.tar"))
            stored = sum(v["train"] + v["test"] for v in card["benchmarks"].values())
            per = sum(p.stat().st_size for p in tars) / stored
            figures[f"{enc}_bytes_per_stored_sample"] = per
            figures[f"{enc}_ntu120_shards_gb"] = per * NTU120 * 2 / 1e9
        h5 = H5Samples(outs["f32"] / "samples.h5")
        figures["samples"] = len(h5)
        figures["mean_frames"] = float(np.mean(h5.num_frames))
        figures["h5_bytes_per_sample"] = (outs["f32"] / "samples.h5").stat().st_size / len(h5)
        figures["ntu120_h5_gb"] = figures["h5_bytes_per_sample"] * NTU120 / 1e9
        for enc in ENCODINGS:
            figures[f"{enc}_size_ratio"] = (figures[f"{enc}_bytes_per_stored_sample"]
                                            / figures["f32_bytes_per_stored_sample"])
        # float16 error against samples.h5, over every sample
        err_max = rel_max = absx = 0.0
        for i in range(len(h5)):
            x = h5.read(i)
            d = np.abs(x.astype(np.float16).astype(np.float32) - x)
            err_max = max(err_max, float(d.max()))
            nz = np.abs(x) >= 2.0 ** -14     # float16's normal range (below: |error| <= 2^-25)
            rel_max = max(rel_max, float((d[nz] / np.abs(x[nz])).max()) if nz.any() else 0.0)
            absx = max(absx, float(np.abs(x).max()))
        figures["f16_max_abs_error_mm"] = err_max * 1000
        figures["f16_max_rel_error"] = rel_max
        figures["f16_rel_error_bound"] = 2.0 ** -11
        figures["max_abs_coordinate_m"] = absx
        # read speed: encodings interleaved, median over repeats
        times = {enc: [] for enc in ENCODINGS}
        cpus = {enc: [] for enc in ENCODINGS}
        counts = {}
        figures["load_avg_1min_before_read"] = os.getloadavg()[0]
        for _ in range(args.repeats):
            for enc in ENCODINGS:
                n, t, c = read_all(outs[enc] / "shards" / "xsub_train")
                counts[enc] = n
                times[enc].append(t)
                cpus[enc].append(c)
        for enc in ENCODINGS:
            figures[f"{enc}_read_samples_per_s"] = counts[enc] / float(np.median(times[enc]))
            cpu_rate = counts[enc] / float(np.median(cpus[enc]))
            figures[f"{enc}_read_samples_per_cpu_s"] = cpu_rate
            figures[f"{enc}_read_cpu_ratio_to_f32"] = cpu_rate / (counts["f32"] / float(np.median(cpus["f32"])))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    record("shards", figures)
    return figures


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
