"""Validation on NW-UCLA's training views only (issue 13): how the real-data ablations and
the pretraining curves choose, without ever looking at view 3 (the X-View test view).

The validation mirrors the cross-view protocol inside the training split: features of
the view-1 samples are the gallery / training set and those of view 2 the queries /
selection set, and the other way round for retrieval:

- `val_knn`: k=1 cosine retrieval, view 1 -> view 2 and view 2 -> view 1, averaged;
- `val_linear`: BatchNorm + linear probe fit on view 1, lr (0.03 / 0.1 / 0.3) and epoch
  chosen on view 2, its accuracy there (a ranking figure: chosen and scored on the same
  part, the same for every variant).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

#: Manifest column holding NW-UCLA's camera view (1, 2, 3) and the two training views.
VIEW_COLUMN, VIEWS = "view", (1, 2)


def training_views(data: Path, index: np.ndarray) -> np.ndarray:
    """The view (1 or 2) of each training sample, by HDF5 row `index` [N] (int64)."""
    from slim.ingest.manifest import read_manifest
    table, _ = read_manifest(data)
    if VIEW_COLUMN not in table.column_names:
        raise ValueError(f"{data}/manifest.parquet has no {VIEW_COLUMN!r} column: not an NW-UCLA ingest")
    of = dict(zip(table.column("index").to_pylist(), table.column(VIEW_COLUMN).to_pylist()))
    return np.asarray([of[int(i)] for i in index])


def validation_scores(encoder, data: Path, out_len: int, column: str = "xview_train",
                      pool: str = "cls+mean") -> dict:
    """{"val_knn", "val_linear"} (percent) of `encoder` (slim Encoder) on the training views
    of NW-UCLA X-View, features pooled `pool` (slim.model.encoder.POOLS) at `out_len`
    frames (its trained global length). Never reads the test split."""
    from slim.eval.features import extract_features
    from slim.eval.knn import knn_accuracy
    from slim.eval.probe import train_probe

    f = extract_features(encoder, data, column, pool=pool, out_len=out_len, progress=False)
    view = training_views(data, f.index)
    a, b = torch.from_numpy(view == VIEWS[0]), torch.from_numpy(view == VIEWS[1])
    knn = (knn_accuracy(f.x[a], f.y[a], f.x[b], f.y[b], (1,))[1]
           + knn_accuracy(f.x[b], f.y[b], f.x[a], f.y[a], (1,))[1]) / 2
    num_classes = int(f.y.max()) + 1
    probe = train_probe(f.x[a], f.y[a], f.x[b], f.y[b], num_classes, lrs=(0.03, 0.1, 0.3), epochs=100,
                        batch_size=256, generator=torch.Generator().manual_seed(0))
    return {"val_knn": round(float(knn), 2), "val_linear": round(float(probe.select_accuracy), 2)}
