"""Batches of chosen HDF5 rows under the pipeline's test transform, for fine-tuning and
evaluating a carved part of a split (the pipeline's eval loader serves whole manifest
columns; fine-tuning also needs the rows of a validation carving)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from slim.pipeline.config import PipelineConfig
from slim.pipeline.loader import EvalDataset, collate_eval
from slim.pipeline.sources import H5Dataset


def indexed_loader(data_dir: Path, rows: np.ndarray, batch_size: int, *, shuffle: bool,
                   generator: torch.Generator | None = None, num_workers: int = 0,
                   drop_last: bool = False, out_len: int | None = None) -> DataLoader:
    """Batches of HDF5 rows `rows` int [N]: {x float32 [B, 2, out_len, V, C], person_mask
    bool [B, 2], label int64 [B], index int64 [B], ids}; the same transform and collate as
    the pipeline's eval loader. out_len: frames of the test view (None: the pipeline's
    default global length, 64); pass the encoder's trained length (EvalTarget.eval_len)."""
    cfg = PipelineConfig()
    ds = EvalDataset(H5Dataset(data_dir), 0, 1, int(out_len or cfg.global_len), cfg.test_crop)
    ds.rows = np.asarray(rows, dtype=np.int64)  # this part only, in the given order
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, drop_last=drop_last, collate_fn=collate_eval)
