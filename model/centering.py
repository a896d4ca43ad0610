"""DINO centering of teacher outputs: an alternative to Sinkhorn-Knopp for small batches.

Sinkhorn-Knopp (`slim.model.sinkhorn`) makes every batch's targets share the prototypes
equally: each of K prototypes gets N / K rows' worth of mass. With N rows much smaller
than K (a CPU batch of 32 samples x 2 global views against 256 prototypes) no target can
be sharp: each row is spread over at least K / N prototypes, the targets are close to
uniform and carry little signal. DINO's centering (Caron et al. 2021, "Emerging
Properties in Self-Supervised Vision Transformers", arXiv:2104.14294, Eq. and Alg. 1)
subtracts a running mean of the teacher logits instead: it prevents one prototype from
dominating over time without asking a single batch to cover all prototypes, so targets
can stay sharp at any batch size."""
from __future__ import annotations

import torch

from .sinkhorn import _all_reduce, _distributed


@torch.no_grad()
def centered_probs(logits: torch.Tensor, center: torch.Tensor, temp: float | torch.Tensor) -> torch.Tensor:
    """softmax((logits - center) / temp) in float32.

    logits: [N, K] teacher head scores; center: [1, K] running mean of the scores;
    temp: teacher temperature (float or 0-dim tensor). Returns [N, K], rows sum to 1."""
    with torch.autocast(logits.device.type, enabled=False):
        return torch.softmax((logits.float() - center.float()) / temp, dim=-1)


@torch.no_grad()
def update_center(center: torch.Tensor, logits: torch.Tensor, momentum: float,
                  valid: torch.Tensor | None = None) -> None:
    """In place: center <- momentum * center + (1 - momentum) * mean of the rows of logits
    (over `valid` rows only when given, and over all ranks when torch.distributed runs).

    center: float32 [1, K] buffer; logits: [N, K]; valid: bool [N] or None. A batch (or,
    summed over ranks, a step) without a valid row leaves center unchanged."""
    x = logits.float()
    w = torch.ones(x.shape[0], device=x.device) if valid is None else valid.float()
    s = _all_reduce((x * w[:, None]).sum(0, keepdim=True))
    n = _all_reduce(w.sum())
    mean = s / n.clamp_min(1.0)
    new = momentum * center + (1.0 - momentum) * mean
    center.copy_(torch.where(n > 0, new, center))


__all__ = ["centered_probs", "update_center", "_distributed"]
