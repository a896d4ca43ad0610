"""WebDataset shards: plain tar files of `<key>.npy` (or `<key>.npy.gz`) + `<key>.json`
per sample (no pickle), written under a temporary name and renamed when complete. Headers
come from `tarfile` (deterministic: mtime 0, no owner) so identical inputs give identical
bytes; the member bytes are written straight to one buffered file per shard (what
`TarFile.addfile` + `close` write, without its per-member copies and bookkeeping).

Each split folder also gets `shards.json` (INDEX_NAME), written atomically once every
shard of the folder is complete: every shard's name, sample count, byte size and sha256,
so a reader of a bucket or an HTTP server knows the epoch size and each rank's share
without listing, and can check every shard it downloads (docs/internals.md).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
import tarfile
from pathlib import Path

import numpy as np

#: The per-folder shard index; its format tag (bumped on an incompatible change).
INDEX_NAME = "shards.json"
INDEX_FORMAT = "slim-shards/1"

#: Shard encodings (`slim-ingest --shard-encoding`): the stored dtype of the joints and
#: whether the .npy member is gzip-compressed (member `<key>.npy.gz`, which WebDataset's
#: own decoders also unpack). Readers always hand out float32.
ENCODINGS = {"f32": ("<f4", False), "f16": ("<f2", False),
             "f32.gz": ("<f4", True), "f16.gz": ("<f2", True)}
DEFAULT_ENCODING = "f32"
#: gzip level of the .gz encodings: levels 6 and 9 shrink the joints 0.05-0.2 % more than
#: 1 at 1.1-1.25x its CPU (measured on 300 synthetic NTU-format samples, float32 and
#: float16): float coordinates barely compress, so the cheapest level.
GZIP_LEVEL = 1


def encode_joints(x: np.ndarray, encoding: str) -> tuple[str, bytes]:
    """(member extension, bytes) of joints float32 [T, M, V, 3] in `encoding`. f16
    rounds to the nearest float16 (|error| <= 2^-11 |x| in float16's normal range, half a
    unit in the last place of IEEE 754 binary16: under 0.5 mm per coordinate within 1 m
    of the body centre, under 0.98 mm within 4 m; benchmarks/shards.py measures it); raises
    ValueError if a value does not fit float16 (|x| > 65504)."""
    dtype, gz = ENCODINGS[encoding]
    if dtype == "<f2":
        y = x.astype(np.float16)
        if not np.isfinite(y).all():
            raise ValueError("a coordinate does not fit float16 (|x| > 65504 m): use --shard-encoding f32")
        payload = npy_bytes(y)
    else:
        payload = npy_bytes(np.ascontiguousarray(x, dtype=np.float32))
    if gz:
        return "npy.gz", gzip.compress(payload, compresslevel=GZIP_LEVEL, mtime=0)
    return "npy", payload

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


def write_index(folder: Path, entries: list[dict], encoding: str) -> Path:
    """Write `folder`/shards.json atomically (temporary file + rename): {"format",
    "encoding", "num_samples", "shards": [{"name", "samples", "bytes", "sha256"}, ...]}
    in shard order."""
    folder = Path(folder)
    index = {"format": INDEX_FORMAT, "encoding": encoding,
             "num_samples": int(sum(e["samples"] for e in entries)), "shards": entries}
    tmp = folder / (INDEX_NAME + ".tmp")
    tmp.write_text(json.dumps(index, indent=1) + "\n")
    os.replace(tmp, folder / INDEX_NAME)
    return folder / INDEX_NAME


class SplitShardWriter:
    """Writes one split's samples, in order, into `n_shards` tar files of balanced counts:
    shard k holds samples [k n / S, (k + 1) n / S); `close` writes the folder's index
    (shards.json). encoding: one of ENCODINGS."""

    def __init__(self, folder: Path, split: str, n_samples: int, n_shards: int,
                 encoding: str = DEFAULT_ENCODING):
        if encoding not in ENCODINGS:
            raise ValueError(f"shard encoding {encoding!r}: one of {', '.join(ENCODINGS)}")
        self.encoding = encoding
        self.entries: list[dict] = []
        self._hash = None
        self._samples = 0
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
        self._hash = hashlib.sha256()
        self._samples = 0

    def _put(self, data: bytes) -> None:
        self._tar.write(data)
        self._hash.update(data)

    def _close_current(self) -> None:
        if self._tar is not None:
            # End of archive as tarfile writes it: two zero blocks, then zeros up to a
            # whole record (20 blocks).
            end = self._size + 2 * tarfile.BLOCKSIZE
            tail = tarfile.NUL * (2 * tarfile.BLOCKSIZE + (-end) % tarfile.RECORDSIZE)
            self._put(tail)
            self._tar.close()
            self.entries.append({"name": self._path.name, "samples": self._samples,
                                 "bytes": self._size + len(tail), "sha256": self._hash.hexdigest()})
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
        self._put(head + payload + tarfile.NUL * pad)
        self._size += len(head) + len(payload) + pad

    def write(self, joints: np.ndarray, meta: dict, npy: tuple[str, bytes] | None = None) -> None:
        """joints float32 [T, M, V, 3]; meta: id, index, label, num_frames, num_persons,
        dataset; npy: `encode_joints(joints, self.encoding)` when the caller has it (a
        sample goes into one split of each benchmark: encode once)."""
        while self._tar is None or self.count >= self.bounds[self.k + 1]:
            self._open_next()
        key = shard_key(meta["id"])
        ext, payload = npy if npy is not None else encode_joints(joints, self.encoding)
        self._add(f"{key}.{ext}", payload)
        self._add(f"{key}.json", json.dumps(meta, sort_keys=True).encode())
        self.count += 1
        self._samples += 1

    def close(self) -> list[Path]:
        """Finish the last shard and write shards.json; returns the shard paths."""
        self._close_current()
        write_index(self.folder, self.entries, self.encoding)
        return self.written

    def abort(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._path.with_name(self._path.name + ".tmp").unlink(missing_ok=True)
            self._tar = None
