"""Masked feature modelling loss (Eq. 4, iBOT-style): cross-entropy between teacher and
student patch-token distributions on masked tokens only; mean over each view's masked
tokens, then mean over views, written as one weighted sum over a fixed-size list of
tokens (`slim.model.masked`: padding entries weigh 0), so its shapes never depend on
the data."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def mfm_loss(teacher_probs: torch.Tensor, student_logits: torch.Tensor, weight: torch.Tensor,
             student_temp: float = 0.1) -> torch.Tensor:
    """teacher_probs: [U, K] targets of the listed tokens (rows sum to 1; padding rows may
    be anything finite, e.g. 0); student_logits: [U, K] student head logits of the same
    tokens; weight: float [U], 1 / (masked tokens of the token's view * views with a
    masked token), 0 for padding (`masked_token_index`, `token_weights`).
    Returns a float32 scalar: sum_i weight_i * CE_i = the mean over views with >= 1 masked
    token of the mean CE of their tokens (0 with a graph when nothing is masked). The
    softmax and the sum run in float32 whatever the autocast dtype of the logits."""
    if student_logits.shape[0] == 0:
        return student_logits.float().sum() * 0.0
    logp = F.log_softmax(student_logits.float() / student_temp, dim=-1)
    ce = -(teacher_probs.float() * logp).sum(-1)                                 # [U]
    return (ce * weight.float()).sum()
