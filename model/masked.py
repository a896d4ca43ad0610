"""Masked tokens of the global views as a fixed-size index (static shapes for the
training step, DINOv2's `collate_data_and_cast` idea): the flat positions of the masked
tokens, padded to a per-batch upper bound, and a weight per position that turns the
MFM loss into one weighted sum (0 on padding). The collate computes them on the CPU;
the step then gathers with `index_select` and never asks the host how many tokens are
masked (no boolean-mask gather, no `.item()`, no graph break under torch.compile)."""
from __future__ import annotations

import warnings

import torch


def masked_token_index(global_mask: torch.Tensor, capacity: int | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices and MFM weights of the masked tokens of the global views.

    global_mask: bool [B, V, N] (the batch layout: V = 2 global views per sample, N tokens
    per view, True = masked). The model lays the views out view-major, row v * B + b of a
    [V * B, N] grid (`slim.model.slim._views_first`); index i is the position
    row * N + token in that grid flattened, in row-major order (the order of the boolean
    gather it replaces).

    Returns index int64 [U] and weight float32 [U], U = capacity (or the number of masked
    tokens when capacity is None: eager only, its size is data-dependent). weight of a
    listed token of view row r = 1 / (listed tokens of r * rows with >= 1 listed token),
    so sum(weight * ce) is the mean over views of the mean CE of their masked tokens
    (Eq. 4); padding entries have index 0 and weight 0; all weights are 0 when nothing
    is masked. When more than `capacity` tokens are masked, the first `capacity` (row
    order) are listed and the weights computed over them, with a RuntimeWarning: those
    tokens stay masked in the student's input, only their loss terms are left out."""
    if global_mask.dim() != 3:
        raise ValueError(f"global_mask must be bool [B, V, N], got shape {list(global_mask.shape)}")
    gm = global_mask.transpose(0, 1).flatten(0, 1).to(torch.bool)        # [V * B, N]
    flat = torch.nonzero(gm.flatten()).flatten()                          # [M]
    if capacity is not None and flat.shape[0] > capacity:
        warnings.warn(f"{flat.shape[0]} masked tokens exceed the batch's {capacity} slots "
                      "(slim.pipeline.collate.mfm_capacity): the MFM loss of this batch leaves the last "
                      f"{flat.shape[0] - capacity} out", RuntimeWarning, stacklevel=2)
        flat = flat[:capacity]
    row = flat // gm.shape[1]
    counts = torch.zeros(gm.shape[0], dtype=torch.float64).index_add_(
        0, row.cpu(), torch.ones(row.shape[0], dtype=torch.float64)).to(flat.device)
    rows_masked = (counts > 0).sum().to(torch.float64)
    per_row = 1.0 / (counts.clamp_min(1.0) * rows_masked.clamp_min(1.0))
    weight = per_row[row].to(torch.float32)
    m = flat.shape[0]
    if capacity is None:
        return flat, weight
    index = flat.new_zeros(capacity)
    index[:m] = flat
    w = weight.new_zeros(capacity)
    w[:m] = weight
    return index, w


def token_weights(view_of_token: torch.Tensor, num_views: int) -> torch.Tensor:
    """MFM weights from the view of each token: int64 [U] (0 .. num_views - 1) -> float32
    [U], 1 / (tokens of its view * views with >= 1 token) (see masked_token_index)."""
    counts = torch.zeros(num_views, dtype=torch.float64).index_add_(
        0, view_of_token.cpu(), torch.ones(view_of_token.shape[0], dtype=torch.float64))
    views = (counts > 0).sum().clamp_min(1)
    return (1.0 / (counts[view_of_token.cpu()] * views)).to(torch.float32).to(view_of_token.device)
