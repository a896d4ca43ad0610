"""Model benchmark: encoder GFLOPs (PROTOCOLS "Cost convention") of ours and of the MAMP
configuration built with the same Encoder class, and CPU inference throughput of both,
measured interleaved in one run (medians; ratio ours / MAMP).

Person assumptions. MAMP always encodes two persons (its input pads the absent one).
Ours encodes present persons only, so its throughput depends on the data: we report the
worst case (both persons present in every sample: `infer_seq_per_s`) and NTU-60's
mix (`infer_seq_per_s_ntu60`): 11 of the 60 classes (A050-A060) are two-person
interactions, so 11/60 of the samples at balanced classes.

    .venv/bin/python -m benchmarks.model [--batch 4] [--repeats 3] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.common import record
from slim.model.encoder import Encoder, EncoderConfig
from slim.model.flops import encoder_gflops, make_infer_fn, person_mask_with_share

NTU60_TWO_PERSON_SHARE = 11 / 60


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="benchmarks.model", description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=4, help="samples per timed batch")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats of each (median)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv or [])
    if args.threads:
        torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(0)
    ours = Encoder(EncoderConfig(), generator=g).eval()
    mamp = Encoder(EncoderConfig.mamp(), generator=g).eval()
    fig: dict = {}
    fig["gflops_person"] = encoder_gflops(ours, 64)
    fig["gflops_two_person"] = 2 * fig["gflops_person"]
    fig["gflops_ntu60_avg"] = (1 + NTU60_TWO_PERSON_SHARE) * fig["gflops_person"]
    fig["gflops_mamp"] = 2 * encoder_gflops(mamp, 120)

    runs = {
        "mamp": make_infer_fn(mamp, 120, person_mask_with_share(args.batch, 1.0)),
        "ours": make_infer_fn(ours, 64, person_mask_with_share(args.batch, 1.0)),
        "ours_ntu60": make_infer_fn(ours, 64, person_mask_with_share(args.batch, NTU60_TWO_PERSON_SHARE)),
    }
    for fn in runs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):  # interleaved, so load changes hit all three alike
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    sps = {k: args.batch / statistics.median(v) for k, v in times.items()}
    fig["infer_seq_per_s"] = sps["ours"]
    fig["infer_seq_per_s_ntu60"] = sps["ours_ntu60"]
    fig["infer_seq_per_s_mamp"] = sps["mamp"]
    fig["infer_ratio"] = sps["ours"] / sps["mamp"]
    fig["infer_ratio_ntu60"] = sps["ours_ntu60"] / sps["mamp"]
    fig["flops_ratio"] = fig["gflops_mamp"] / fig["gflops_two_person"]
    fig["batch"] = args.batch
    fig["repeats"] = args.repeats
    fig["threads"] = torch.get_num_threads()
    fig["assumption"] = ("ours: T=64 P_T=8 both persons (worst case) / NTU-60 mix 11/60 two-person; "
                         "MAMP: T=120 P_T=4 no registers GELU MLP absolute pos, 2 persons always, 751 tokens")
    record("model", fig)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
