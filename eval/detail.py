"""Result detail beyond top-1: top-5, per-class accuracy and the confusion matrix, stored
in the result files of linear, semi, finetune, transfer and retrieval (issue 18)."""
from __future__ import annotations

import torch


def class_detail(scores: torch.Tensor, y: torch.Tensor, num_classes: int,
                 class_names: list[str] | None = None) -> dict:
    """Detail of one set of predictions.

    scores: float [N, C] (logits, probabilities or k-NN votes; higher = more likely),
    y: int [N] true labels (0-based), num_classes: C.
    Returns {"top5": % of samples whose label is among the 5 highest scores (the C
    highest when C < 5), "per_class_top1": [% or None per class (None: no sample)],
    "support": [samples per class], "confusion": [[count]] C x C (row = true class,
    column = predicted), "class_names": [...] (when given)}.
    Raises ValueError when shapes disagree."""
    scores = scores.detach().float().cpu()
    y = y.detach().long().cpu()
    if scores.ndim != 2 or scores.shape[0] != y.shape[0] or scores.shape[1] != num_classes:
        raise ValueError(f"scores must be [N, {num_classes}] for {y.shape[0]} labels, got {tuple(scores.shape)}")
    pred = scores.argmax(1)
    conf = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    conf.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    support = conf.sum(1)
    per_class = [round(100.0 * int(conf[c, c]) / int(support[c]), 4) if support[c] else None
                 for c in range(num_classes)]
    k = min(5, num_classes)
    top5 = 100.0 * (scores.topk(k, dim=1).indices == y[:, None]).any(1).float().mean().item() if len(y) else 0.0
    out = {"top5": top5, "per_class_top1": per_class, "support": support.tolist(),
           "confusion": conf.tolist()}
    if class_names:
        out["class_names"] = list(class_names)
    return out


def merge_details(details: list[dict]) -> dict:
    """One detail over several runs of the same protocol (e.g. semi's seeds): confusion
    matrices summed, per-class accuracy from the sum, top-5 averaged."""
    if not details:
        return {}
    conf = torch.tensor(details[0]["confusion"])
    for d in details[1:]:
        conf += torch.tensor(d["confusion"])
    support = conf.sum(1)
    out = {"top5": sum(d["top5"] for d in details) / len(details),
           "per_class_top1": [round(100.0 * int(conf[c, c]) / int(support[c]), 4) if support[c] else None
                              for c in range(conf.shape[0])],
           "support": support.tolist(), "confusion": conf.tolist(), "runs": len(details)}
    if "class_names" in details[0]:
        out["class_names"] = details[0]["class_names"]
    return out


def knn_scores(sims: torch.Tensor, labels: torch.Tensor, k: int, num_classes: int,
               temperature: float = 0.07) -> torch.Tensor:
    """Class scores [Q, C] of a k-NN vote (k = 1: one vote for the nearest neighbour's
    class; k > 1: DINO weights exp(sim / T)), the same rule as knn.knn_vote."""
    w = torch.ones_like(sims[:, :1]) if k == 1 else (sims[:, :k] / temperature).exp()
    votes = torch.zeros(sims.shape[0], num_classes, dtype=w.dtype, device=w.device)
    votes.scatter_add_(1, labels[:, :k], w)
    return votes
