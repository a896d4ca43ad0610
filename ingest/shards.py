"""WebDataset shards: plain tar files of `<key>.npy` + `<key>.json` per sample (no pickle),
written under a temporary name and renamed when complete. Headers come from `tarfile`
(deterministic: mtime 0, no owner) so identical inputs give identical bytes; the member
bytes are written straight to one buffered file per shard (what `TarFile.addfile` +
`close` write, without its per-member copies and bookkeeping)."""
from __future__ import annotations

import io
import json
import math
import os
import tarfile
from pathlib import Path

import numpy as np

#: Fewest shards of a split: enough for ranks x workers (8 for tiny data, more when big).
MIN_SHARDS = 8
SAMPLES_PER_SHARD_MAX = 256


def shard_key(sample_id: str) -> str:
    """WebDataset splits keys at the first dot: the id with dots replaced."""
    return sample_id.replace(".", "_")


def num_shards(n_samples: int, total_bytes: int, shard_size_mb: float) -> int:
    """max(by size, by count) shards, never more than samples: 40k samples -> 157."""
    if n_samples == 0:
        return 0
    by_size = math.ceil(total_bytes / (shard_size_mb * 2**20))
    by_count = max(MIN_SHARDS, math.ceil(n_samples / SAMPLES_PER_SHARD_MAX))
    return min(n_samples, max(by_size, by_count))


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


class SplitShardWriter:
    """Writes one split's samples, in order, into `n_shards` tar files of balanced counts:
    shard k holds samples [k n / S, (k + 1) n / S)."""

    def __init__(self, folder: Path, split: str, n_samples: int, n_shards: int):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.split = split
        self.bounds = [k * n_samples // n_shards for k in range(n_shards + 1)] if n_shards else [0]
        self.k = -1
        self.count = 0
        self._tar = None            # the open shard's binary file
        self._size = 0              # bytes written to it
        self._path: Path | None = None
        self.written: list[Path] = []

    def _open_next(self) -> None:
        self._close_current()
        self.k += 1
        self._path = self.folder / f"{self.split}-{self.k:06d}.tar"
        self._tar = open(self._path.with_name(self._path.name + ".tmp"), "wb", buffering=1 << 20)
        self._size = 0

    def _close_current(self) -> None:
        if self._tar is not None:
            # End of archive as tarfile writes it: two zero blocks, then zeros up to a
            # whole record (20 blocks).
            end = self._size + 2 * tarfile.BLOCKSIZE
            self._tar.write(tarfile.NUL * (2 * tarfile.BLOCKSIZE + (-end) % tarfile.RECORDSIZE))
            self._tar.close()
            os.replace(self._path.with_name(self._path.name + ".tmp"), self._path)
            self.written.append(self._path)
            self._tar = None

    def _add(self, name: str, payload: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        info.mtime = 0
        info.mode = 0o644
        head = info.tobuf(tarfile.USTAR_FORMAT, tarfile.ENCODING, "surrogateescape")
        pad = (-len(payload)) % tarfile.BLOCKSIZE
        self._tar.write(head + payload + tarfile.NUL * pad)
        self._size += len(head) + len(payload) + pad

    def write(self, joints: np.ndarray, meta: dict, npy: bytes | None = None) -> None:
        """joints float32 [T, M, 25, 3]; meta: id, index, label, num_frames, num_persons,
        dataset; npy: `npy_bytes(joints)` when the caller has it (a sample goes into one
        split of each benchmark: serialise once)."""
        while self._tar is None or self.count >= self.bounds[self.k + 1]:
            self._open_next()
        key = shard_key(meta["id"])
        if npy is None:
            npy = npy_bytes(np.ascontiguousarray(joints, dtype=np.float32))
        self._add(f"{key}.npy", npy)
        self._add(f"{key}.json", json.dumps(meta, sort_keys=True).encode())
        self.count += 1

    def close(self) -> list[Path]:
        self._close_current()
        return self.written

    def abort(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._path.with_name(self._path.name + ".tmp").unlink(missing_ok=True)
            self._tar = None
