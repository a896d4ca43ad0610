"""DDP-safe assembly of per-sample features: every rank encodes a strided part of a
split; the parts are gathered and placed by sample index (never by arrival order), with
a check that no index is duplicated and every expected index is filled."""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist


def place_by_index(feats: torch.Tensor, index: torch.Tensor, expected: np.ndarray,
                   source: str = "features") -> torch.Tensor:
    """Rows of feats [n, F] carrying sample indices index int [n], reordered to follow
    `expected` int [N] (the split's sample indices, manifest order). Returns [N, F].
    Raises ValueError naming the offending indices on duplicates, strays or gaps.
    """
    index = index.long().cpu()
    expected_t = torch.as_tensor(np.asarray(expected), dtype=torch.long)
    uniq, counts = index.unique(return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{source}: sample indices produced twice: "
                         f"{uniq[counts > 1][:10].tolist()} (a sampler padded or repeated samples)")
    order = torch.argsort(expected_t)
    pos = torch.searchsorted(expected_t[order], index)
    pos = pos.clamp(max=len(expected_t) - 1)
    found = expected_t[order][pos] == index
    if not found.all():
        raise ValueError(f"{source}: sample indices not in this split: "
                         f"{index[~found][:10].tolist()}")
    rows = order[pos]
    if len(rows) != len(expected_t):
        filled = torch.zeros(len(expected_t), dtype=torch.bool)
        filled[rows] = True
        raise ValueError(f"{source}: {int((~filled).sum())} samples of the split were never "
                         f"encoded, e.g. indices {expected_t[~filled][:10].tolist()}")
    out = torch.empty(len(expected_t), *feats.shape[1:], dtype=feats.dtype)
    out[rows] = feats.cpu()
    return out


def all_gather_rows(feats: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate (feats [n_r, F], index [n_r]) over all ranks; ranks may hold different
    n_r. Returns (feats [sum n_r, F], index [sum n_r]) on every rank, on CPU. Without an
    initialised process group it returns its inputs.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return feats.cpu(), index.long().cpu()
    # NCCL needs device tensors; gloo wants CPU ones.
    device = feats.device if dist.get_backend() == "nccl" else torch.device("cpu")
    n = torch.tensor([feats.shape[0]], device=device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    m = int(max(s.item() for s in sizes))
    pad_f = torch.zeros(m, *feats.shape[1:], dtype=feats.dtype, device=device)
    pad_f[:feats.shape[0]] = feats.to(device)
    pad_i = torch.full((m,), -1, dtype=torch.long, device=device)
    pad_i[:feats.shape[0]] = index.long().to(device)
    all_f = [torch.empty_like(pad_f) for _ in sizes]
    all_i = [torch.empty_like(pad_i) for _ in sizes]
    dist.all_gather(all_f, pad_f)
    dist.all_gather(all_i, pad_i)
    f = torch.cat([a[:int(s.item())] for a, s in zip(all_f, sizes)]).cpu()
    i = torch.cat([a[:int(s.item())] for a, s in zip(all_i, sizes)]).cpu()
    return f, i
