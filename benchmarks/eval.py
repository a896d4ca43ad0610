"""Evaluation benchmarks: exact k-NN retrieval over NTU-sized random features
(`eval.retrieval_s`: 50k gallery x 16k queries x 512-d, k = 1, 10, 20, chunked running
top-k) and frozen-feature extraction throughput with the paper's encoder on a synthetic
dataset (`eval.features_seq_per_s`, test transform, both persons, batches of 64).
Medians of repeats. `python -m benchmarks.eval [--gallery N --queries Q --device cuda]`."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import median_time, record


def bench_retrieval(gallery: int, queries: int, dim: int, device: torch.device, repeats: int) -> float:
    from slim.eval.knn import knn_accuracy
    g = torch.Generator().manual_seed(0)
    train_x = torch.randn(gallery, dim, generator=g).to(device)
    train_y = torch.randint(0, 120, (gallery,), generator=g)
    test_x = torch.randn(queries, dim, generator=g).to(device)
    test_y = torch.randint(0, 120, (queries,), generator=g)

    def run():
        knn_accuracy(train_x, train_y, test_x, test_y, ks=(1, 10, 20), num_classes=120)
        if device.type == "cuda":
            torch.cuda.synchronize()
    # No warm-up run: nothing is compiled or cached, and each run is ~0.8 TFLOP of matmul.
    return median_time(run, repeats=repeats, warmup=0)


def bench_features(device: torch.device, repeats: int, batch: int) -> tuple[float, int]:
    """(sequences per second, samples) of extract_features over a synthetic dataset."""
    from slim.eval.features import extract_features
    from slim.ingest.run import ingest
    from slim.ingest.synth import SynthConfig, generate
    from slim.model.encoder import Encoder, EncoderConfig
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate(tmp / "raw", SynthConfig(classes=8, performers=4, per_class=1, seed=0), progress=False)
        data = ingest("synthetic", tmp / "raw", tmp / "data", workers=0)
        enc = Encoder(EncoderConfig(), generator=torch.Generator().manual_seed(0)).eval()
        n = {}

        def run():
            f = extract_features(enc, data, "xsub_train", batch_size=batch, device=device, progress=False)
            n["n"] = len(f.ids)
            if device.type == "cuda":
                torch.cuda.synchronize()
        t = median_time(run, repeats=repeats, warmup=1)
    return n["n"] / t, n["n"]


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gallery", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=16_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--feature-batch", type=int, default=64)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    t0 = time.perf_counter()
    retrieval_s = bench_retrieval(args.gallery, args.queries, args.dim, device, args.repeats)
    seq_per_s, n = bench_features(device, args.repeats, args.feature_batch)
    record("eval", {
        "retrieval_s": retrieval_s,
        "retrieval_gallery": args.gallery,
        "retrieval_queries": args.queries,
        "retrieval_dim": args.dim,
        "features_seq_per_s": seq_per_s,
        "features_samples": n,
        "device": str(device),
        "bench_wall_s": time.perf_counter() - t0,
    })


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
