"""Encoder cost by the project's convention (PROTOCOLS "Cost convention"): FLOPs counted
by torch.utils.flop_counter.FlopCounterMode (2 x multiply-adds), encoder only, batch 1,
attention matmuls included (explicit-matmul attention while counting); and CPU inference
throughput of whole samples."""
from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from .encoder import Encoder, encode_sample


def encoder_gflops(encoder: Encoder, frames: int) -> float:
    """GFLOPs of one forward of one person's sequence of `frames` frames (batch 1)."""
    c = encoder.cfg
    x = torch.zeros(1, frames, c.num_joints, c.in_chans, device=encoder.cls_token.device)
    fused = [blk.attn.fused for blk in encoder.blocks]
    encoder.set_fused_attention(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            encoder(x)
    finally:
        for blk, f in zip(encoder.blocks, fused):
            blk.attn.fused = f
    return counter.get_total_flops() / 1e9


def person_mask_with_share(samples: int, two_person_share: float) -> torch.Tensor:
    """bool [samples, 2]: person 0 always present, person 1 present in the first
    round(share * samples) samples (a deterministic stand-in for a dataset's mix)."""
    pm = torch.zeros(samples, 2, dtype=torch.bool)
    pm[:, 0] = True
    pm[: round(two_person_share * samples), 1] = True
    return pm


def make_infer_fn(encoder: Encoder, frames: int, person_mask: torch.Tensor):
    """A no-argument callable running `encode_sample` (cls+mean) on a fixed random batch of
    person_mask.shape[0] samples of `frames` frames with persons as in `person_mask` [S, M];
    eval mode, fused attention, on the encoder's device (synchronised on CUDA)."""
    encoder.eval()
    c = encoder.cfg
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*person_mask.shape, frames, c.num_joints, c.in_chans, generator=g).to(encoder.cls_token.device)
    pm = person_mask.to(x.device)

    @torch.no_grad()
    def run() -> None:
        encode_sample(encoder, x, pm)
        if x.is_cuda:
            torch.cuda.synchronize()

    return run


def samples_per_second(encoder: Encoder, frames: int, person_mask: torch.Tensor,
                       repeats: int = 5, warmup: int = 1) -> float:
    """Median sequences (samples) per second of `make_infer_fn(encoder, frames, person_mask)`."""
    run = make_infer_fn(encoder, frames, person_mask)
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return person_mask.shape[0] / statistics.median(times)
