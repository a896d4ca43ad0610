"""Global-local contrastive loss on class tokens (Eq. 6, both directions): the teacher's
distribution of anchor global view a is the target for the student class tokens of the
other global view and of every local view whose anchor is a."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def glcl_loss(teacher_probs: torch.Tensor, student_logits: torch.Tensor,
              targets: list[tuple[int, int]] | torch.Tensor, student_temp: float = 0.1) -> torch.Tensor:
    """Cross-entropy averaged over terms and samples.

    teacher_probs: [A, B, K] target distribution of each anchor global view (rows sum to 1).
    student_logits: [S, B, K] head logits of each student view (before the temperature).
    targets: (anchor a, student view s) pairs, one per term: a list of int pairs, or an
    int64 tensor [terms, 2] on the logits' device (the training step passes a tensor, so
    nothing is read back from the device).
    Returns a float32 scalar: mean over terms of mean over B of -sum_k p_t log p_s (the
    softmax runs in float32 whatever the autocast dtype of the logits). Raises
    ValueError when there is no term."""
    if len(targets) == 0:
        raise ValueError("GLCL has no (anchor, view) term: need two global views")
    logp = F.log_softmax(student_logits.float() / student_temp, dim=-1)  # [S, B, K]
    if not isinstance(targets, torch.Tensor):
        targets = torch.tensor(targets, dtype=torch.int64, device=logp.device)
    a_idx, s_idx = targets.unbind(1)
    ce = -(teacher_probs.float()[a_idx] * logp[s_idx]).sum(-1)  # [terms, B]
    return ce.mean()
