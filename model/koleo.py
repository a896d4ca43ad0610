"""KoLeo regulariser (Sablayrolles et al.): -mean log distance to the nearest neighbour,
spreading L2-normalised features over the sphere. Guarded for duplicate vectors (distance
0) and batch size 1 (no neighbour), both of which give inf/NaN in DINOv2."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def koleo_loss(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x: [N, D] features (normalised here). Returns a float32 scalar; 0 when N < 2.
    Runs in float32 under autocast too (autocast is switched off inside: the
    nearest-neighbour search would otherwise run its matmul in bf16)."""
    if x.shape[0] < 2:
        return x.float().sum() * 0.0  # keeps the graph (and the device) for a uniform backward
    with torch.autocast(x.device.type, enabled=False):
        x = F.normalize(x.float(), dim=-1, eps=eps)
        with torch.no_grad():
            dots = x @ x.t()
            dots.fill_diagonal_(-2.0)  # below any cosine: a vector is not its own neighbour
            nn_idx = dots.argmax(dim=1)
        # The eps inside the norm keeps the gradient finite at distance 0 (duplicates).
        d = ((x - x[nn_idx]).pow(2).sum(-1) + eps).sqrt()
        return -torch.log(d + eps).mean()
