"""samples.h5: ragged skeleton sequences stored flat, frame major, with offsets.

Layout (DESIGN.md "Data contracts", docs/internals.md):
  joints      float32 [R, V, 3]   all persons of frame 0, then frame 1, ... (metres)
  offsets     int64   [N + 1]     sample i owns rows offsets[i]:offsets[i+1]
  num_frames  int32   [N]
  num_persons int8    [N]
  label       int16   [N]         0-based
  id          utf-8 str [N]       the dataset's own id
  attributes  dataset, ingest_version, normalization, layout (a registered name,
              slim.ingest.topology; V = that layout's joint count)

The writer streams (never holds more than one chunk of rows) and writes to a temporary
name that is renamed only when the file is complete, so a reader never sees a half file.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from slim.ingest.topology import Layout, get_layout

#: Rows per HDF5 chunk along the frame axis: 4096 rows x 25 x 3 x 4 B (ntu25) = 1.2 MB, about
#: 40 two-person samples; big enough for fast sequential writes, small enough that a
#: random read of one sample touches one or two chunks.
CHUNK_ROWS = 4096
_STR = h5py.string_dtype("utf-8")


class H5Writer:
    """Append samples one at a time; `close()` renames the finished file into place.

    Use as a context manager; an exception inside the block removes the temporary file.
    `layout` is a registered layout name; it fixes V. Raises KeyError for an unknown one.
    """

    def __init__(self, path: str | os.PathLike, *, dataset: str, ingest_version: str,
                 normalization: str, layout: str, chunk_rows: int = CHUNK_ROWS):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.num_joints = get_layout(layout).num_joints
        nj = self.num_joints
        self._f = h5py.File(self.tmp, "w")
        self._f.attrs.update(dataset=dataset, ingest_version=ingest_version,
                             normalization=normalization, layout=layout)
        self._joints = self._f.create_dataset(
            "joints", shape=(0, nj, 3), maxshape=(None, nj, 3),
            dtype=np.float32, chunks=(chunk_rows, nj, 3))
        self._rows = 0
        self._offsets = [0]
        self._frames: list[int] = []
        self._persons: list[int] = []
        self._labels: list[int] = []
        self._ids: list[str] = []
        # Rows are buffered and flushed one chunk at a time: resizing per sample is slow.
        self._buf: list[np.ndarray] = []
        self._buf_rows = 0
        self._chunk_rows = chunk_rows

    def __len__(self) -> int:
        return len(self._ids)

    def append(self, sample_id: str, label: int, joints: np.ndarray) -> int:
        """Add one sample; joints: float32 [T, M, V, 3] (metres). Returns its index.
        Raises ValueError on a wrong shape or a non-finite value (never stored)."""
        nj = self.num_joints
        if joints.ndim != 4 or joints.shape[2:] != (nj, 3):
            raise ValueError(f"{sample_id}: joints must be [T, M, {nj}, 3], got {joints.shape}")
        t, m = joints.shape[:2]
        if t < 1 or not 1 <= m <= 2:
            raise ValueError(f"{sample_id}: need T >= 1 and 1 <= M <= 2, got T={t}, M={m}")
        rows = np.ascontiguousarray(joints, dtype=np.float32).reshape(t * m, nj, 3)
        if not np.isfinite(rows).all():
            raise ValueError(f"{sample_id}: non-finite coordinates; the readers turn them into "
                             "NaN and drop those frames before anything is stored (coords.py)")
        self._buf.append(rows)
        self._buf_rows += rows.shape[0]
        self._rows += rows.shape[0]
        self._offsets.append(self._rows)
        self._frames.append(t)
        self._persons.append(m)
        self._labels.append(int(label))
        self._ids.append(sample_id)
        if self._buf_rows >= self._chunk_rows:
            self._flush()
        return len(self._ids) - 1

    def _flush(self) -> None:
        if not self._buf:
            return
        block = np.concatenate(self._buf, axis=0)
        start = self._joints.shape[0]
        self._joints.resize(start + block.shape[0], axis=0)
        self._joints[start:] = block
        self._buf, self._buf_rows = [], 0

    def close(self) -> Path:
        """Write the per-sample arrays, close and rename into place. Returns the path."""
        self._flush()
        f = self._f
        f.create_dataset("offsets", data=np.asarray(self._offsets, dtype=np.int64))
        f.create_dataset("num_frames", data=np.asarray(self._frames, dtype=np.int32))
        f.create_dataset("num_persons", data=np.asarray(self._persons, dtype=np.int8))
        f.create_dataset("label", data=np.asarray(self._labels, dtype=np.int16))
        f.create_dataset("id", data=np.asarray(self._ids, dtype=object), dtype=_STR)
        f.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._f.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "H5Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class H5Samples:
    """Read-only view of samples.h5. The file is opened on first use in each process
    (safe to pickle into DataLoader workers: the handle is never pickled).

    Small per-sample arrays (`ids`, `labels`, `num_frames`, `num_persons`, `offsets`)
    are loaded once into memory; joints are read per sample.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_dir():
            self.path = self.path / "samples.h5"
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no samples.h5 here; run `slim-ingest` first")
        self._f: h5py.File | None = None
        self._joints: h5py.Dataset | None = None
        self._pid: int | None = None
        self._meta: dict | None = None

    def _file(self) -> h5py.File:
        if self._f is None or self._pid != os.getpid():
            # 4 MB chunk cache: holds a few ~1.2 MB chunks, so sequential readers
            # (evaluation) read each chunk once.
            self._f = h5py.File(self.path, "r", rdcc_nbytes=4 << 20)
            # Looking the dataset up per read costs ~10x the read of one sample.
            self._joints = self._f["joints"]
            self._pid = os.getpid()
        return self._f

    def _load_meta(self) -> dict:
        if self._meta is None:
            # A short-lived handle: reading the index must not pin an open file in
            # the parent process that forked workers would then share.
            with h5py.File(self.path, "r") as f:
                self._meta = {
                    "offsets": f["offsets"][:],
                    "num_frames": f["num_frames"][:],
                    "num_persons": f["num_persons"][:],
                    "labels": f["label"][:],
                    "ids": [s.decode() if isinstance(s, bytes) else s for s in f["id"][:]],
                    "attrs": {k: (v.decode() if isinstance(v, bytes) else v)
                              for k, v in f.attrs.items()},
                }
        return self._meta

    def __getstate__(self):
        return {"path": self.path, "_f": None, "_joints": None, "_pid": None, "_meta": self._meta}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __len__(self) -> int:
        return len(self._load_meta()["num_frames"])

    @property
    def ids(self) -> list[str]:
        return self._load_meta()["ids"]

    @property
    def labels(self) -> np.ndarray:
        """int16 [N], 0-based."""
        return self._load_meta()["labels"]

    @property
    def num_frames(self) -> np.ndarray:
        """int32 [N]."""
        return self._load_meta()["num_frames"]

    @property
    def num_persons(self) -> np.ndarray:
        """int8 [N]."""
        return self._load_meta()["num_persons"]

    @property
    def offsets(self) -> np.ndarray:
        """int64 [N + 1], rows into `joints`."""
        return self._load_meta()["offsets"]

    @property
    def attrs(self) -> dict:
        """dataset, ingest_version, normalization, layout."""
        return self._load_meta()["attrs"]

    def num_joints_stored(self) -> int:
        """V of the joints dataset [R, V, 3]."""
        return int(self._file()["joints"].shape[1])

    @property
    def layout(self) -> Layout:
        """The samples' skeleton layout (attribute `layout`; raises KeyError if unknown)."""
        return get_layout(self.attrs["layout"])

    def read(self, i: int) -> np.ndarray:
        """Sample i as float32 [T, M, V, 3] (metres)."""
        meta = self._load_meta()
        n = len(meta["num_frames"])
        if not -n <= i < n:
            raise IndexError(f"{self.path}: sample {i} out of range (N = {n})")
        i = int(i) % n
        a, b = int(meta["offsets"][i]), int(meta["offsets"][i + 1])
        self._file()
        rows = self._joints[a:b]
        return rows.reshape(int(meta["num_frames"][i]), int(meta["num_persons"][i]), rows.shape[1], 3)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = self._joints = None

    def __enter__(self) -> "H5Samples":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
