"""Exact k-NN retrieval on L2-normalised features (cosine similarity), with the DINO
weighted vote for k > 1. Memory is bounded by the chunk sizes, never by N x Q: query
chunks against gallery chunks with a running top-k, so NTU-120 (113k x 512) fits."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def topk_neighbours(query: torch.Tensor, gallery: torch.Tensor, k: int, *,
                    query_chunk: int = 4096, gallery_chunk: int = 16384
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k cosine neighbours of each query row in the gallery.

    query [Q, D], gallery [N, D] (any float dtype, any device; normalised here).
    Returns (sims float32 [Q, k'], idx int64 [Q, k']) sorted by descending similarity,
    k' = min(k, N). Peak extra memory ~ query_chunk x (gallery_chunk + k) floats.
    """
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(f"features must be [Q, D] and [N, D]; got {tuple(query.shape)} "
                         f"and {tuple(gallery.shape)}")
    if gallery.shape[0] == 0:
        raise ValueError("the gallery is empty: the training split has no samples")
    k = min(k, gallery.shape[0])
    device = gallery.device
    gallery = F.normalize(gallery.float(), dim=1)
    out_s = torch.empty(query.shape[0], k, dtype=torch.float32, device=device)
    out_i = torch.empty(query.shape[0], k, dtype=torch.int64, device=device)
    for q0 in range(0, query.shape[0], query_chunk):
        q = F.normalize(query[q0:q0 + query_chunk].to(device).float(), dim=1)
        best_s = torch.full((q.shape[0], 0), float("-inf"), device=device)
        best_i = torch.zeros((q.shape[0], 0), dtype=torch.int64, device=device)
        for g0 in range(0, gallery.shape[0], gallery_chunk):
            sims = q @ gallery[g0:g0 + gallery_chunk].T          # [q, g]
            s, i = sims.topk(min(k, sims.shape[1]), dim=1)
            # Merge with the running best: concatenating 2k candidates keeps it exact.
            cand_s = torch.cat([best_s, s], dim=1)
            cand_i = torch.cat([best_i, i + g0], dim=1)
            best_s, pos = cand_s.topk(min(k, cand_s.shape[1]), dim=1)
            best_i = cand_i.gather(1, pos)
        out_s[q0:q0 + q.shape[0]] = best_s
        out_i[q0:q0 + q.shape[0]] = best_i
    return out_s, out_i


def knn_vote(sims: torch.Tensor, labels: torch.Tensor, k: int, num_classes: int,
             temperature: float = 0.07) -> torch.Tensor:
    """Predicted class per query from its neighbours.

    sims float [Q, K] (descending), labels int64 [Q, K] (neighbour labels), k <= K.
    k = 1: the nearest neighbour's label. k > 1: votes weighted by exp(sim / T) (DINO).
    Returns int64 [Q].
    """
    if k == 1:
        return labels[:, 0].clone()
    w = (sims[:, :k] / temperature).exp()
    votes = torch.zeros(sims.shape[0], num_classes, dtype=w.dtype, device=w.device)
    votes.scatter_add_(1, labels[:, :k], w)
    return votes.argmax(dim=1)


def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                 test_y: torch.Tensor, ks: Sequence[int] = (1,), *, num_classes: int | None = None,
                 temperature: float = 0.07, query_chunk: int = 4096,
                 gallery_chunk: int = 16384) -> dict[int, float]:
    """Top-1 accuracy in percent of k-NN classification for each k in ks.

    train_x [N, D] gallery features, train_y int [N], test_x [Q, D], test_y int [Q].
    Returns {k: accuracy %}.
    """
    if not ks or min(ks) < 1:
        raise ValueError(f"k must be >= 1; got {list(ks)}")
    device = train_x.device
    train_y = train_y.to(device).long()
    test_y = test_y.to(device).long()
    if num_classes is None:
        num_classes = int(max(train_y.max(), test_y.max())) + 1
    sims, idx = topk_neighbours(test_x, train_x, max(ks), query_chunk=query_chunk,
                                gallery_chunk=gallery_chunk)
    nb_labels = train_y[idx]                                      # [Q, K]
    return {k: 100.0 * (knn_vote(sims, nb_labels, min(k, idx.shape[1]), num_classes,
                                 temperature) == test_y).float().mean().item()
            for k in ks}
