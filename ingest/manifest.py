"""manifest.parquet: one row per sample of samples.h5 (row i = HDF5 sample i), with the
dataset fields, one bool column per benchmark split and per few-label subset, and the
dataset description in the schema metadata (keys `slim.<name>`, JSON values)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.parquet"
#: Metadata names (stored as `slim.<name>`); values are JSON-encoded.
META_KEYS = ("dataset", "ingest_version", "normalization", "benchmarks", "num_classes",
             "class_names", "layout")
PREFIX = "slim."


def _path(where: str | os.PathLike) -> Path:
    p = Path(where)
    return p / MANIFEST if p.is_dir() or p.suffix != ".parquet" else p


def encode_meta(meta: dict) -> dict[bytes, bytes]:
    """{name: value} -> {b"slim.name": JSON bytes}. Every META_KEYS entry is required."""
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"manifest metadata is missing {missing}")
    out = {}
    for k, v in meta.items():
        k = k[len(PREFIX):] if k.startswith(PREFIX) else k
        # Plain strings are stored raw so that other parquet tools show them readably.
        out[(PREFIX + k).encode()] = (v if isinstance(v, str) else json.dumps(v)).encode()
    return out


def decode_meta(raw: dict[bytes, bytes] | None) -> dict:
    """Inverse of `encode_meta`. Each value is given under both `name` and `slim.name`
    (the bytes key of docs/internals.md), so either spelling works for readers."""
    meta: dict = {}
    for k, v in (raw or {}).items():
        k = k.decode()
        if not k.startswith(PREFIX):
            continue
        name, text = k[len(PREFIX):], v.decode()
        if name in ("benchmarks", "num_classes", "class_names") or text[:1] in "[{":
            value = json.loads(text)
        else:
            value = text
        meta[name] = value
        meta[k] = value
    return meta


def write_manifest(where: str | os.PathLike, table: pa.Table, meta: dict) -> Path:
    """Write `table` with `meta` (see META_KEYS) atomically to <where>/manifest.parquet
    (or to `where` itself when it ends in .parquet). Returns the path."""
    path = _path(where)
    path.parent.mkdir(parents=True, exist_ok=True)
    schema_meta = dict(table.schema.metadata or {})
    schema_meta.update(encode_meta(meta))
    table = table.replace_schema_metadata(schema_meta)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return path


def read_manifest(where: str | os.PathLike) -> tuple[pa.Table, dict]:
    """(table, meta) from <where>/manifest.parquet (or a .parquet path).

    meta: dataset (str), ingest_version (str), normalization (str), benchmarks
    (list[str]), num_classes (int), class_names (list[str]), layout (str); each also
    under its `slim.`-prefixed name.
    """
    path = _path(where)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest here; run `slim-ingest <dataset> "
                                f"--raw DIR --out DIR` first")
    table = pq.read_table(path)
    return table, decode_meta(table.schema.metadata)


def split_column(benchmark: str, split: str, subset: str | None = None) -> str:
    """Column name of a split (`xsub`, `train`) -> `xsub_train`; with subset `1pct` ->
    `xsub_train_1pct`."""
    name = f"{benchmark}_{split}"
    return f"{name}_{subset}" if subset else name


def dataset_layout(where: str | os.PathLike):
    """The skeleton layout (slim.ingest.topology.Layout) of an ingested dataset, from the
    manifest's `slim.layout`. Raises FileNotFoundError (no manifest) or KeyError (a
    layout this code does not know: re-ingest with this version)."""
    from slim.ingest.topology import get_layout

    path = _path(where)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest here; run `slim-ingest <dataset> "
                                f"--raw DIR --out DIR` first")
    meta = decode_meta(pq.read_schema(path).metadata)
    return get_layout(meta["layout"])
