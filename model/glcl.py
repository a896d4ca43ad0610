"""Global-local contrastive loss on class tokens (Eq. 6, both directions): the teacher's
distribution of anchor global view a is the target for the student class tokens of the
other global view and of every local view whose anchor is a."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def glcl_loss(teacher_probs: torch.Tensor, student_logits: torch.Tensor, targets: list[tuple[int, int]],
              student_temp: float = 0.1) -> torch.Tensor:
    """Cross-entropy averaged over terms and samples.

    teacher_probs: [A, B, K] target distribution of each anchor global view (rows sum to 1).
    student_logits: [S, B, K] head logits of each student view (before the temperature).
    targets: (anchor a, student view s) pairs, one per term.
    Returns a scalar: mean over terms of mean over B of -sum_k p_t log p_s."""
    if not targets:
        raise ValueError("GLCL has no (anchor, view) term: need two global views")
    logp = F.log_softmax(student_logits.float() / student_temp, dim=-1)  # [S, B, K]
    a_idx = torch.tensor([a for a, _ in targets], device=logp.device)
    s_idx = torch.tensor([s for _, s in targets], device=logp.device)
    ce = -(teacher_probs[a_idx] * logp[s_idx]).sum(-1)  # [terms, B]
    return ce.mean()
