"""Class-balanced few-label subsets of a training split, made once at ingest."""
from __future__ import annotations

import numpy as np

SUBSET_RATIOS = {"1pct": 0.01, "10pct": 0.10}
SUBSET_SEED = 42


def balanced_subset(labels: np.ndarray, member: np.ndarray, ratio: float,
                    rng: np.random.Generator) -> np.ndarray:
    """bool [N]: for each class c among the `member` rows (bool [N]) of `labels` (int [N]),
    max(1, floor(n_c * ratio)) rows drawn without replacement; classes in increasing
    order, candidates in row order, so the result depends only on the rng state."""
    out = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels[member]):
        rows = np.flatnonzero(member & (labels == c))
        k = max(1, int(np.floor(len(rows) * ratio + 1e-9)))
        out[rng.choice(rows, size=k, replace=False)] = True
    return out


def subset_columns(labels: np.ndarray, splits: dict[str, np.ndarray],
                   benchmarks: tuple[str, ...], seed: int = SUBSET_SEED) -> dict[str, np.ndarray]:
    """`<bench>_train_<ratio>` bool [N] columns for every benchmark; one generator per
    column, seeded by (seed, column position), so adding a benchmark never changes others."""
    out = {}
    for b_i, bench in enumerate(benchmarks):
        for r_i, (name, ratio) in enumerate(SUBSET_RATIOS.items()):
            rng = np.random.default_rng([seed, b_i, r_i])
            out[f"{bench}_train_{name}"] = balanced_subset(labels, splits[f"{bench}_train"],
                                                           ratio, rng)
    return out
