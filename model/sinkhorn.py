"""Sinkhorn-Knopp centering of teacher outputs (SwAV / DINOv2), single-process or
all-reduced across ranks when torch.distributed is initialised (the batch dimension is
then the global batch; DINOv2 all-reduces unconditionally, which breaks one process)."""
from __future__ import annotations

import torch
import torch.distributed as dist


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce(t: torch.Tensor, op=None) -> torch.Tensor:
    if _distributed():
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t


@torch.no_grad()
def sinkhorn_knopp(logits: torch.Tensor, temp: float | torch.Tensor, iterations: int = 3,
                   valid: torch.Tensor | None = None) -> torch.Tensor:
    """Teacher targets with equipartition over prototypes.

    logits: [N, K] (this rank's rows; N may be 0 on a rank); temp: teacher temperature
    (a float, or a 0-dim tensor so that a compiled step does not recompile when it
    changes); valid: bool [N] or None, rows that take part (padding rows of a fixed-size
    token list are False: they get no mass and do not count in N).
    Returns probabilities [N, K] in float32 (also under autocast: the whole computation
    is float32): every valid row sums to 1, invalid rows are 0; after enough iterations
    every column sums to N_total / K over all ranks (3 iterations approximate that).
    Nothing is read back to the host: the shapes and the control flow do not depend on
    the values."""
    with torch.autocast(logits.device.type, enabled=False):
        return _sinkhorn(logits, temp, iterations, valid)


def _sinkhorn(logits, temp, iterations, valid):
    q = logits.float() / temp
    if valid is not None:
        q = q.masked_fill(~valid[:, None], float("-inf"))
    # Subtracting the (global) max leaves the result unchanged (it cancels in the first
    # normalisation) and keeps exp finite at low temperatures; clamped so that a rank
    # (or a batch) without a valid row gives zeros, not NaN.
    m = q.max() if q.numel() else q.new_tensor(float("-inf"))
    m = _all_reduce(m.clone(), dist.ReduceOp.MAX if _distributed() else None)
    q = torch.exp(q - m.clamp_min(torch.finfo(torch.float32).min)).t()  # [K, N]
    k = q.shape[0]
    n_rows = valid.sum().float() if valid is not None else torch.tensor(float(q.shape[1]), device=q.device)
    n_total = _all_reduce(n_rows)
    q = q / _all_reduce(q.sum()).clamp_min(1e-30)
    for _ in range(iterations):
        rows = _all_reduce(q.sum(dim=1, keepdim=True))  # [K, 1] mass per prototype
        q = q / rows.clamp_min(1e-30) / k
        q = q / q.sum(dim=0, keepdim=True).clamp_min(1e-30) / n_total  # [1, N] mass per sample
    return (q * n_total).t()
