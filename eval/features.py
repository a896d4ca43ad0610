"""Frozen per-sample features of a split: the test transform (centre 95 %, resampled to
the encoder's trained global-view length: 64 frames in the paper's recipe),
both persons (absent ones never encoded), pooled `cls | mean | cls+mean`, extracted in
batches with a progress bar, gathered by sample index under torchrun, and cached on disk
keyed by encoder sha256 + data + transform + split."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from slim.ingest.clitools import err_console
from slim.ingest.manifest import read_manifest
from slim.model.encoder import Encoder, encode_sample

from .gather import all_gather_rows, place_by_index

#: Frames of the test view when nothing says what the encoder was trained on: the
#: paper's global-view length (Appendix B).
DEFAULT_EVAL_LEN = 64


def transform_desc(out_len: int = DEFAULT_EVAL_LEN) -> str:
    """Recorded in the cache key and result files: what the features were computed from."""
    return f"test_view(centre 95%, {int(out_len)} frames), both persons, absent skipped"


TRANSFORM = transform_desc()
CACHE_VERSION = 1


@dataclass
class Features:
    x: torch.Tensor        # float32 [N, F], manifest order of the split
    y: torch.Tensor        # int64 [N] labels
    index: np.ndarray      # int64 [N] rows in samples.h5
    ids: list[str]         # dataset ids


def split_rows(data_dir: Path, column: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows of the manifest where bool column `column` (e.g. xsub_train) is True.
    Returns (index int64 [N], label int64 [N], ids [N]) in manifest order."""
    table, _meta = read_manifest(data_dir)
    if column not in table.column_names:
        split_cols = [c for c in table.column_names if c.endswith(("_train", "_test", "pct"))]
        raise ValueError(f"{data_dir}/manifest.parquet has no column {column!r}; it has {split_cols}")
    keep = np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=bool)
    index = np.asarray(table.column("index").to_numpy())[keep].astype(np.int64)
    label = np.asarray(table.column("label").to_numpy())[keep].astype(np.int64)
    ids = [s for s, k in zip(table.column("id").to_pylist(), keep) if k]
    return index, label, ids


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def extract_features(encoder: Encoder, data_dir: Path, column: str, *, pool: str = "cls+mean",
                     batch_size: int = 256, device: str | torch.device = "cpu",
                     num_workers: int = 0, progress: bool = True,
                     out_len: int = DEFAULT_EVAL_LEN) -> Features:
    """Encode every sample of manifest column `column` with the test transform
    (centre crop resampled to `out_len` frames: the encoder's trained global length,
    `EvalTarget.eval_len`).

    Under torchrun each rank encodes a strided part (the loader splits by rank); parts are
    gathered and placed by sample index, checked complete and duplicate-free. Returns the
    same Features (x float32 [N, F] on CPU) on every rank.
    """
    from slim.pipeline.loader import build_eval_loader
    rank, world = _rank_world()
    expected, labels, ids = split_rows(data_dir, column)
    encoder = encoder.to(device).eval()
    from slim.pipeline.config import PipelineConfig
    loader = build_eval_loader(data_dir, column, batch_size, rank=rank, world_size=world,
                               num_workers=num_workers, cfg=PipelineConfig(global_len=int(out_len)))
    feats, index = [], []
    mine = len(range(rank, len(expected), world))
    with Progress(TextColumn("features {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console,
                  disable=not progress or rank != 0, transient=True) as bar:
        task = bar.add_task(column, total=mine)
        for batch in loader:
            x = batch["x"].to(device, non_blocking=True)
            pm = batch["person_mask"].to(device, non_blocking=True)
            f = encode_sample(encoder, x, pm, pool=pool)              # [B, F]
            feats.append(f.float().cpu())
            index.append(torch.as_tensor(batch["index"]).long())
            bar.advance(task, x.shape[0])
    dim = feats[0].shape[1] if feats else encoder.cfg.dim * (2 if pool == "cls+mean" else 1)
    local_f = torch.cat(feats) if feats else torch.zeros(0, dim)
    local_i = torch.cat(index) if index else torch.zeros(0, dtype=torch.long)
    all_f, all_i = all_gather_rows(local_f.to(device), local_i.to(device))
    x = place_by_index(all_f, all_i, expected, source=f"{data_dir} [{column}]")
    return Features(x=x, y=torch.as_tensor(labels), index=expected, ids=ids)


def data_identity(data_dir: Path) -> dict:
    """What identifies a dataset's bytes: card.json's checksums when there, else the sizes
    and modification times of samples.h5 and manifest.parquet (cheap, and changes on
    re-ingest)."""
    data_dir = Path(data_dir).resolve()
    card = data_dir / "card.json"
    ident = {"path": str(data_dir)}
    if card.is_file():
        outputs = json.loads(card.read_text()).get("outputs", {})
        ident["outputs"] = {k: v for k, v in outputs.items() if k in ("samples.h5", "manifest.parquet")}
    for name in ("samples.h5", "manifest.parquet"):
        p = data_dir / name
        if p.exists():
            st = p.stat()
            ident[name] = [st.st_size, st.st_mtime_ns]
    return ident


def cache_key(encoder_sha: str, data_dir: Path, column: str, pool: str,
              out_len: int = DEFAULT_EVAL_LEN) -> str:
    key = {"v": CACHE_VERSION, "encoder": encoder_sha, "data": data_identity(data_dir),
           "column": column, "pool": pool, "transform": transform_desc(out_len)}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def cached_features(encoder: Encoder, encoder_sha: str, data_dir: Path, column: str,
                    cache_dir: Path | None, *, pool: str = "cls+mean", batch_size: int = 256,
                    device="cpu", num_workers: int = 0, progress: bool = True,
                    out_len: int = DEFAULT_EVAL_LEN) -> Features:
    """`extract_features`, computed once per (encoder sha256, data, transform, split, pool)
    and stored as `<cache_dir>/<key>.npz` (rank 0 writes, atomically). cache_dir None:
    no cache."""
    path = Path(cache_dir) / f"{cache_key(encoder_sha, data_dir, column, pool, out_len)}.npz" if cache_dir else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return Features(x=torch.from_numpy(z["x"]), y=torch.from_numpy(z["y"]),
                            index=z["index"], ids=[str(s) for s in z["ids"]])
    feats = extract_features(encoder, data_dir, column, pool=pool, batch_size=batch_size,
                             device=device, num_workers=num_workers, progress=progress, out_len=out_len)
    if path is not None and _rank_world()[0] == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, x=feats.x.numpy(), y=feats.y.numpy(), index=feats.index,
                 ids=np.asarray(feats.ids, dtype=str))
        os.replace(tmp, path)
    return feats
