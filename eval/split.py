"""Honest model selection (DESIGN.md decision 9): a validation part carved from the
training split, stratified by class, from a fixed seed, so hyper-parameters and epochs
are chosen without touching the test split."""
from __future__ import annotations

import numpy as np


def carve_validation(labels: np.ndarray, fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of positions 0..N-1 into (fit, val).

    labels int [N]. Per class, round(fraction * n_c) samples go to val, at least one when
    the class has two or more samples and fraction > 0, and never all of a class (each
    class keeps one training sample). Returns (fit int64 [N - n_val], val int64 [n_val]),
    both sorted ascending.
    """
    labels = np.asarray(labels)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1); got {fraction}")
    val = []
    for c in np.unique(labels):
        pos = np.flatnonzero(labels == c)
        n_val = int(round(fraction * len(pos)))
        if fraction > 0 and len(pos) >= 2:
            n_val = max(1, n_val)
        n_val = min(n_val, len(pos) - 1)
        if n_val > 0:
            val.append(rng.choice(pos, size=n_val, replace=False))
    val = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    fit = np.setdiff1d(np.arange(len(labels)), val)
    return fit.astype(np.int64), val.astype(np.int64)
