"""`make bench ONLY=mfm_chunk`: the CPU step's fixed-size MFM-head calls (issue 11 item 8)
against one exact-size call, in one process, on the same batches.

`SLiM.forward_backward` with `mfm_chunk=0` (the view's masked tokens in one call of
their changing size) and with the CPU default (`cpu_mfm_chunk`: fixed sizes, so glibc's
heap reuses what a step frees; docs/internals.md "Memory (CPU)") alternate round by round
(the order flips every round) on `--batches` real pretraining batches of the `cpu-demo`
preset from a dataset folder (default data/synthetic, made by `make demo`). Wall-clock
seconds per step; the first two rounds are dropped as warm-up. Figures go to the results
file under `mfm_chunk` (ratio = fixed-size / exact, below 1 = faster).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(data: Path, threads: int, rounds: int, n_batches: int, preset: str = "cpu-demo") -> dict:
    """Alternate the two step variants for `rounds` rounds; returns medians (s per step)
    and the ratios (fixed-size over exact)."""
    import torch

    from slim.model.slim import SLiM
    from slim.pipeline.loader import build_pretrain_loader
    from slim.train.config import resolve

    torch.set_num_threads(threads)
    cfg = resolve(preset)
    it = iter(build_pretrain_loader(data, "xsub", cfg.pipeline, cfg.data.global_batch, seed=0,
                                    end_step=n_batches))
    batches = list(it)
    model = SLiM(cfg.model, torch.Generator().manual_seed(0))
    times: dict = {0: [], None: []}
    for r in range(rounds):
        for chunk in ((0, None) if r % 2 == 0 else (None, 0)):
            t = time.perf_counter()
            model.zero_grad(set_to_none=True)
            model.forward_backward(batches[r % len(batches)], 0.04, None, mfm_chunk=chunk)
            times[chunk].append(time.perf_counter() - t)
    exact, fixed = times[0][2:], times[None][2:]
    return {"preset": preset, "threads": threads, "rounds": rounds, "batches": len(batches),
            "exact_s": round(statistics.median(exact), 4), "fixed_s": round(statistics.median(fixed), 4),
            "ratio": round(statistics.median(fixed) / statistics.median(exact), 4),
            "paired_ratio": round(statistics.median([f / e for e, f in zip(exact, fixed)]), 4)}


def main(argv: list[str]) -> None:
    from benchmarks.common import record

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "synthetic")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=24)
    ap.add_argument("--batches", type=int, default=12)
    args = ap.parse_args(argv)
    if not (args.data / "samples.h5").is_file():
        print(f"error: no ingested dataset at {args.data}\nhint: run `make demo` first (it writes "
              "data/synthetic), or pass --data DIR", file=sys.stderr)
        raise SystemExit(2)
    record("mfm_chunk", run(args.data, args.threads, args.rounds, args.batches))


if __name__ == "__main__":
    main(sys.argv[1:])
