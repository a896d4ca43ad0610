"""The fixed-size masked-token index of a pretraining batch (DINOv2's collate returns the
masked tokens' indices with an upper bound for its buffers; here the index itself is
padded to a bound): `mfm_capacity` bounds the masked global tokens of a batch from the
config alone, and `add_mfm_index` adds the padded index and the MFM weights to the
batch, so the training step has the same shapes at every step (no recompilation, no
host-device synchronisation; `slim.model.masked`)."""
from __future__ import annotations

import numpy as np

from slim.model.masked import masked_token_index

from slim.ingest.topology import NTU25, Layout

from .config import PipelineConfig
from .masking import run_table


def _overshoot(cfg: PipelineConfig, layout: Layout) -> int:
    """Most tokens the last tube can add beyond a view's target: the widest semantic
    group of the layout minus one (tube masking), 0 for random masking."""
    return int(run_table(layout).group_sizes.max()) - 1 if cfg.masking == "tube" else 0


def max_masked_per_view(cfg: PipelineConfig, tokens: int, layout: Layout = NTU25) -> int:
    """Most tokens a global view of `tokens` tokens can have masked under cfg.

    Random masking masks exactly round(r * N) tokens, r <= mask_ratio[1]. Tube masking
    stops at the first tube that reaches its target round(r * N); that tube adds at most
    (tokens still to mask) + (tube width - 1) tokens (its height rounds area / width to
    the nearest integer, at least 1), so it overshoots by at most the widest semantic
    group of `layout` minus one (5 joints on ntu25). Capped at N."""
    target = int(np.rint(cfg.mask_ratio[1] * tokens))
    return min(tokens, target + _overshoot(cfg, layout))


#: Standard deviations above the mean of a batch's masked tokens that `mfm_capacity`
#: allows. A batch's count is a sum of independent per-view counts (each view draws its
#: own ratio), so it is nearly normal with bounded tails: at 8 sigma an overflow has a
#: probability below 1e-15 per batch (under 1e-9 over the paper's 750,000 batches).
CAPACITY_SIGMAS = 8.0


def mfm_capacity(cfg: PipelineConfig, batch_size: int, tokens: int, layout: Layout = NTU25) -> int:
    """The number of masked-token slots U of a batch of `batch_size` samples (2 global
    views of `tokens` tokens each): a function of the config only, so every batch of a
    run has the same shapes.

    The smaller of the worst case (every view at its maximum, `max_masked_per_view`) and
    the mean plus CAPACITY_SIGMAS standard deviations of the batch's total, with the
    per-view mean taken at the top (ratio mean * N + the largest overshoot) and the
    per-view spread over-estimated (uniform ratio: N (hi - lo) / sqrt(12), plus half the
    largest overshoot). Small batches get the worst case (exact, never exceeded); at the
    paper's per-GPU batch 192 (N = 200, ratio U(0.5, 0.9)) U = 59,963 slots for 53,970
    masked tokens on average, standard deviation 450 (measured over 200 batches): 11 %
    padding rows (weight 0) instead of 32 % with the worst case, which costs 17.5 % more
    step FLOPs (the MFM heads dominate the step). A batch above U keeps its first U
    tokens in the MFM loss (`masked_token_index`)."""
    views = 2 * int(batch_size)
    n = int(tokens)
    worst = max_masked_per_view(cfg, n, layout)
    over = _overshoot(cfg, layout)
    lo, hi = cfg.mask_ratio
    mean = n * (lo + hi) / 2 + over + 0.5
    sd = n * (hi - lo) / 12 ** 0.5 + over / 2 + 0.5
    tail = views * mean + CAPACITY_SIGMAS * sd * views ** 0.5
    return int(min(views * worst, int(np.ceil(tail))))


def add_mfm_index(batch: dict, cfg: PipelineConfig, layout: Layout = NTU25) -> dict:
    """batch (torch, with "global_mask" bool [B, 2, N]) -> the same dict with
    "mfm_index" int64 [U] and "mfm_weight" float32 [U], U = mfm_capacity(cfg, B, N, layout)
    (see slim.model.masked.masked_token_index; a batch with more masked tokens than U,
    practically never, keeps its first U in the MFM loss, with a warning)."""
    gm = batch["global_mask"]
    cap = mfm_capacity(cfg, gm.shape[0], gm.shape[-1], layout)
    batch["mfm_index"], batch["mfm_weight"] = masked_token_index(gm, cap)
    return batch
