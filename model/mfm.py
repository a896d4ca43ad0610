"""Masked feature modelling loss (Eq. 4, iBOT-style): cross-entropy between teacher and
student patch-token distributions on masked tokens only; mean over each view's masked
tokens, then mean over views."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def mfm_loss(teacher_probs: torch.Tensor, student_logits: torch.Tensor, view_of_token: torch.Tensor,
             num_views: int, student_temp: float = 0.1) -> torch.Tensor:
    """teacher_probs: [N_m, K] targets of the masked tokens (rows sum to 1);
    student_logits: [N_m, K] student head logits of the same tokens;
    view_of_token: int64 [N_m] index (0 .. num_views-1) of the view each token belongs to.
    Returns a scalar: mean over views with >= 1 masked token of the mean CE of their tokens
    (0 with a graph when nothing is masked)."""
    if student_logits.shape[0] == 0:
        return student_logits.sum() * 0.0
    ce = -(teacher_probs * F.log_softmax(student_logits.float() / student_temp, dim=-1)).sum(-1)  # [N_m]
    counts = torch.bincount(view_of_token, minlength=num_views).to(ce.dtype)  # [num_views]
    per_view = ce.new_zeros(num_views).index_add_(0, view_of_token, ce)
    has = counts > 0
    return (per_view[has] / counts[has]).mean()
