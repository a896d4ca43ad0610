"""The fixed-size masked-token index of a pretraining batch (DINOv2's collate idea):
`mfm_capacity` bounds the masked global tokens of a batch from the config alone, and
`add_mfm_index` adds the padded index and the MFM weights to the batch, so the training
step has the same shapes at every step (no recompilation, no host-device
synchronisation; `slim.model.masked`)."""
from __future__ import annotations

import numpy as np

from slim.model.masked import masked_token_index

from .config import PipelineConfig
from .masking import GROUP_SIZES


def max_masked_per_view(cfg: PipelineConfig, tokens: int) -> int:
    """Most tokens a global view of `tokens` tokens can have masked under cfg.

    Random masking masks exactly round(r * N) tokens, r <= mask_ratio[1]. Tube masking
    stops at the first tube that reaches its target round(r * N); that tube adds at most
    (tokens still to mask) + (tube width - 1) tokens (its height rounds area / width to
    the nearest integer, at least 1), so it overshoots by at most the widest body
    group minus one (5 joints on NTU). Capped at N."""
    target = int(np.rint(cfg.mask_ratio[1] * tokens))
    over = int(GROUP_SIZES.max()) - 1 if cfg.masking == "tube" else 0
    return min(tokens, target + over)


def mfm_capacity(cfg: PipelineConfig, batch_size: int, tokens: int) -> int:
    """Upper bound of the masked tokens of the 2 global views of `batch_size` samples,
    `tokens` tokens per view: the U of the batch's `mfm_index` (a function of the config
    only, so every batch of a run has it). At the paper's setting (N = 200, ratio up to
    0.9, tube widths up to 6) it is 185 per view, while a view masks 140 on average:
    the MFM heads process about 30 % padding rows (weight 0) in exchange for static
    shapes."""
    return 2 * int(batch_size) * max_masked_per_view(cfg, int(tokens))


def add_mfm_index(batch: dict, cfg: PipelineConfig) -> dict:
    """batch (torch, with "global_mask" bool [B, 2, N]) -> the same dict with
    "mfm_index" int64 [U] and "mfm_weight" float32 [U], U = mfm_capacity(cfg, B, N)
    (see slim.model.masked.masked_token_index). Raises ValueError if a mask breaks the
    bound (a bug of the mask generator)."""
    gm = batch["global_mask"]
    cap = mfm_capacity(cfg, gm.shape[0], gm.shape[-1])
    batch["mfm_index"], batch["mfm_weight"] = masked_token_index(gm, cap)
    return batch
