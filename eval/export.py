"""Per-sample embeddings, keyed by dataset id (never by array position), to Parquet
(columns id, index, label, split, feature: fixed-size list of float32; schema metadata
says which encoder, data, benchmark, pool and transform produced them) or to CSV
(id, index, label, split, f0 ... f{F-1}; no metadata). The format follows the file's
suffix; any other suffix is refused."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from slim.ingest.versions import code_version

from .common import FeatureOptions, is_main_process, split_features
from .features import transform_desc
from .target import EvalTarget


FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def output_format(path: str | Path) -> str:
    """"parquet" or "csv" from the file suffix; ValueError naming the accepted ones."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"--out {path}: the suffix says neither Parquet nor CSV "
                         f"(accepted: {', '.join(FORMATS)})")
    return fmt


@dataclass(frozen=True)
class FeaturesConfig:
    out: str = "features.parquet"
    parts: tuple[str, ...] = ("train", "test")
    features: FeatureOptions = FeatureOptions()


def write_features(target: EvalTarget, cfg: FeaturesConfig) -> tuple[Path, int]:
    """Extract (or load cached) features of each part and write one Parquet or CSV file
    (by cfg.out's suffix, see output_format), atomically; rank 0 only under torchrun
    (every rank gets the same return value). Returns (path, rows)."""
    fmt = output_format(cfg.out)
    tables = []
    for part in cfg.parts:
        f = split_features(target, part, cfg.features)
        x = f.x.numpy().astype(np.float32)                                 # [N, F]
        feat = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
        tables.append(pa.table({
            "id": pa.array(f.ids, pa.string()),
            "index": pa.array(f.index, pa.int64()),
            "label": pa.array(f.y.numpy().astype(np.int16), pa.int16()),
            "split": pa.array([f"{target.benchmark}_{part}"] * len(f.ids), pa.string()),
            "feature": feat,
        }))
    table = pa.concat_tables(tables)
    meta = {"slim.encoder_sha256": target.sha256, "slim.encoder": target.label,
            "slim.data": str(target.data_dir), "slim.dataset": target.dataset,
            "slim.benchmark": target.benchmark, "slim.pool": cfg.features.pool,
            "slim.transform": transform_desc(target.eval_len), "slim.code_version": code_version()}
    table = table.replace_schema_metadata({k.encode(): (v if isinstance(v, str) else json.dumps(v)).encode()
                                           for k, v in meta.items()})
    out = Path(cfg.out)
    if is_main_process():   # under torchrun every rank holds the gathered features; one writes
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        if fmt == "csv":
            _write_csv(table, tmp)
        else:
            pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, out)
    return out, table.num_rows


def _write_csv(table: pa.Table, path: Path) -> None:
    """id, index, label, split, then one column f<j> per feature dimension."""
    import csv
    x = np.asarray(table.column("feature").combine_chunks().flatten()).reshape(table.num_rows, -1)
    cols = [table.column(c).to_pylist() for c in ("id", "index", "label", "split")]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "index", "label", "split", *(f"f{j}" for j in range(x.shape[1]))])
        for i in range(table.num_rows):
            w.writerow([c[i] for c in cols] + [f"{v:.7g}" for v in x[i]])
