"""Where samples come from: the map-style HDF5 dataset (any split/subset of the
manifest) and the streaming WebDataset shards for pretraining.

Both hand out the same item: {"joints": float32 [T, M, V, C] (metres), "label": int,
"index": int (row in samples.h5), "id": str}.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch.utils.data

from slim.ingest.h5store import H5Samples
from slim.ingest.manifest import read_manifest


def split_rows(data_dir: str | os.PathLike, split: str | None = None,
               subset: str | None = None) -> np.ndarray:
    """Rows of samples.h5 (int64 [n], manifest order) in a split and/or subset column
    of the manifest (e.g. split="xsub_train", subset="xsub_train_1pct")."""
    table, _ = read_manifest(data_dir)
    rows = np.asarray(table.column("index"), dtype=np.int64)
    keep = np.ones(rows.shape[0], dtype=bool)
    for col in (split, subset):
        if col is None:
            continue
        if col not in table.column_names:
            have = [c for c in table.column_names if table.schema.field(c).type == "bool"]
            raise KeyError(f"{Path(data_dir) / 'manifest.parquet'}: no split column {col!r}; "
                           f"this dataset has {have}")
        keep &= np.asarray(table.column(col).fill_null(False), dtype=bool)
    return rows[keep]


class EmptySplit(ValueError):
    """A split (or subset) of the manifest with no sample: message + `hint`."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


class NonFiniteSample(ValueError):
    """A stored sample with NaN or infinite coordinates: never fed to a model."""


def check_finite(joints: np.ndarray, sample_id: str, where: str | os.PathLike) -> np.ndarray:
    """joints float32 [T, M, V, C] unchanged, or NonFiniteSample naming the sample. The
    ingest never stores such a sample (`slim.ingest.coords` drops those frames), so one
    here comes from an older ingest or a changed file; checked once per sample read (a
    few microseconds against milliseconds of augmentation)."""
    if not np.isfinite(joints).all():
        bad = np.argwhere(~np.isfinite(joints))
        raise NonFiniteSample(
            f"sample {sample_id} in {where} has {len(bad)} non-finite coordinates (first at "
            f"[t, m, v, c] = {bad[0].tolist()}); re-run `slim-ingest` into a new --out folder "
            f"(it drops frames with NaN, infinite or impossible values) and `slim-ingest verify` it")
    return joints


class H5Dataset(torch.utils.data.Dataset):
    """Map-style view of one split/subset of samples.h5; the file is opened lazily in
    each worker process and never pickled.

    Index arrays and joints come from H5Samples (its handle is per process).
    """

    def __init__(self, data_dir: str | os.PathLike, split: str | None = None,
                 subset: str | None = None):
        self.data_dir = Path(data_dir)
        self.store = H5Samples(self.data_dir / "samples.h5")
        self.rows = split_rows(self.data_dir, split, subset)
        if self.rows.size == 0:
            part = " and ".join(repr(c) for c in (split, subset) if c)
            raise EmptySplit(f"{self.data_dir}: the {part} split is empty (0 of {len(self.store)} samples)",
                             f"choose another --benchmark or --data (`slim-ingest info {self.data_dir}` "
                             "shows each split's size), or ingest raw files that include this split")

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def read(self, row: int) -> np.ndarray:
        """HDF5 sample `row` as float32 [T, M, V, C] (metres)."""
        return self.store.read(int(row))

    def item(self, row: int) -> dict:
        """The item for HDF5 row `row` (not a position in this split). Raises
        NonFiniteSample for a sample with NaN / inf coordinates."""
        sid = self.store.ids[row]
        return {"joints": check_finite(self.read(row), sid, self.store.path),
                "label": int(self.store.labels[row]), "index": int(row), "id": sid}

    def __getitem__(self, i: int) -> dict:
        return self.item(self.rows[i])


# --- WebDataset shards ---------------------------------------------------------------
# Where shards live and how one is fetched (URLs, index, retries): pipeline/shardset.py.

def list_shards(data_dir: str | os.PathLike, benchmark: str, split: str = "train") -> list[Path]:
    """Sorted shard files of data/<dataset>/shards/<benchmark>_<split>/."""
    folder = Path(data_dir) / "shards" / f"{benchmark}_{split}"
    shards = sorted(folder.glob("*.tar"))
    if not shards:
        raise FileNotFoundError(f"{folder}: no .tar shards; re-run `slim-ingest` (it writes "
                                f"shards) or use the HDF5 source (source='h5')")
    return shards


def slot_shards(shards: list, slot: int, slots: int, where: str = "") -> list:
    """Shards (any list: paths, URLs, indices) of one (rank, worker) slot: every
    slots-th shard from `slot` on.

    Every slot must own at least one shard, else ranks would stream unequal data or
    stall: raise a clear error instead (raised identically on every rank, so DDP never
    hangs on it).
    """
    if len(shards) < slots:
        where = where or (str(shards[0].parent) if shards and isinstance(shards[0], Path) else "the shards")
        raise ValueError(
            f"{where}: {len(shards)} shards for {slots} readers (ranks x "
            f"workers); each reader needs at least one. Use fewer DataLoader workers, "
            f"re-ingest with more shards, or use source='h5'")
    return shards[slot::slots]


def _decode(sample: dict) -> dict:
    from .shardset import joints_bytes

    meta = json.loads(sample["json"])
    joints = np.load(io.BytesIO(joints_bytes(sample)), allow_pickle=False).astype(np.float32, copy=False)
    check_finite(joints, str(meta["id"]), sample.get("__url__", "a shard"))
    return {"joints": joints, "label": int(meta["label"]),
            "index": int(meta["index"]), "id": str(meta["id"])}


def read_shard(path: Path) -> Iterator[dict]:
    """Raw samples ({"__key__", "npy" or "npy.gz": bytes, "json": bytes}) of one local
    shard, in order (unchecked: no index)."""
    from .shardset import parse_tar

    yield from parse_tar(Path(path).read_bytes(), str(path))


def stream_samples(shards: list, rng: np.random.Generator, buffer: int = 256, *,
                   read=None, max_failed: float = 1.0) -> Iterator[dict]:
    """Endless stream of decoded items from shards drawn with replacement (resampled),
    shuffled through a buffer of `buffer` raw samples. Deterministic given rng (and,
    under faults, given which fetches fail).

    shards: the reader's shards (paths, or indices for `read`); read: shard -> list of
    raw samples, raising shardset.ShardUnreadable when it gives up (default: a local
    file, read_shard). A shard given up on is left out of later draws (its draws are
    skipped, rng still advancing); when more than `max_failed` of the reader's shards
    (a share, 0..1) are given up, or all of them, TooManyFailedShards is raised."""
    from .shardset import ShardError, ShardUnreadable

    read = read or (lambda p: list(read_shard(p)))
    failed: set[int] = set()
    pool: list[dict] = []
    while True:
        k = int(rng.integers(len(shards)))
        if k in failed:
            continue
        try:
            samples = read(shards[k])
        except ShardUnreadable as exc:
            failed.add(k)
            if len(failed) > max_failed * len(shards) or len(failed) == len(shards):
                raise ShardError(
                    f"{len(failed)} of this reader's {len(shards)} shards could not be read (more than "
                    f"data.max_failed_shards={max_failed:g} of them); last: {exc}",
                    "check the shard server or bucket and the copies against shards.json "
                    "(`slim-ingest verify`), or raise data.max_failed_shards; the same command "
                    "resumes from the last checkpoint") from None
            continue
        for s in samples:
            if len(pool) < buffer:
                pool.append(s)
                continue
            j = int(rng.integers(buffer))
            pool[j], s = s, pool[j]
            yield _decode(s)
