"""Assembly: finished chunks -> samples.h5, manifest.parquet, shards, card.json.

A single writer streams the chunks once (one chunk of joints in memory at a time). Every
output is written under a temporary name and renamed; card.json is written last, so its
presence means the run is complete.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from slim.ingest.datasets import NATIVE_LAYOUT, Plan, fields_of, split_columns
from slim.ingest.h5store import H5Writer
from slim.ingest.inventory import accounting
from slim.ingest.manifest import write_manifest
from slim.ingest.shards import DEFAULT_ENCODING, INDEX_NAME, SplitShardWriter, encode_joints, num_shards
from slim.ingest.subsets import subset_columns
from slim.ingest.topology import get_layout, get_mapping
from slim.ingest.versions import INGEST_VERSION, code_version
from slim.ingest.work import Chunk, file_sha256



def build_table(dataset: str, chunks: list[Chunk], plan: Plan, warnings: list[str]
                ) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """The manifest rows of every sample, in chunk order, and the split/subset columns."""
    ids = [i for c in chunks for i in c.ids]
    label = np.concatenate([c.label for c in chunks]) if chunks else np.zeros(0, np.int16)
    frames = np.concatenate([c.num_frames for c in chunks]) if chunks else np.zeros(0, np.int32)
    persons = np.concatenate([c.num_persons for c in chunks]) if chunks else np.zeros(0, np.int8)
    rows = [f for c in chunks for f in c.info["fields"]]
    # An import without sample names (a CTR-GCN npz whose order cannot be matched to
    # names) has no name-derived columns, and its splits come from the file.
    names = [n for n in fields_of(dataset) if all(n in r for r in rows)]
    fields = {}
    for name in names:
        vals = [r[name] for r in rows]
        fields[name] = np.asarray(vals, dtype=object if dataset == "pku2" and name in ("video", "view") else np.int64)
    if "file_splits" in plan.context:
        splits = {k: np.asarray(v, dtype=bool) for k, v in plan.context["file_splits"].items()}
    else:
        splits = split_columns(dataset, fields, plan.context, warnings)
    subsets = subset_columns(label, splits, plan.benchmarks)
    cols = {
        "index": pa.array(np.arange(len(ids), dtype=np.int64)),
        "id": pa.array(ids, pa.string()),
        "dataset": pa.array([dataset] * len(ids), pa.string()),
        "label": pa.array(label.astype(np.int16)),
        "num_frames": pa.array(frames.astype(np.int32)),
        "num_persons": pa.array(persons.astype(np.int8)),
    }
    for name, vals in fields.items():
        cols[name] = pa.array(vals.tolist(), pa.string()) if vals.dtype == object else \
            pa.array(vals.astype(np.int16 if name != "start" and name != "end" else np.int32))
    masks = {**splits, **subsets}
    for name, m in masks.items():
        cols[name] = pa.array(m.astype(bool))
    return pa.table(cols), masks


def assemble_outputs(out_dir: Path, dataset: str, chunk_paths: list[Path], plan: Plan,
                     *, normalization: str, shard_size_mb: float, config: dict,
                     fingerprint: str, on_chunk: Callable[[int], None] | None = None,
                     extra: dict | None = None, shard_encoding: str = DEFAULT_ENCODING) -> dict:
    """Write every output of `out_dir` from the chunks; returns the card. `extra`: more
    card entries (an import's `source` record), written with the rest. shard_encoding:
    slim.ingest.shards.ENCODINGS key (recorded in the card and each shards.json)."""
    out_dir = Path(out_dir)
    chunks = [Chunk(p) for p in chunk_paths]
    warnings = list(plan.warnings)
    skipped = list(plan.skipped) + [s for c in chunks for s in c.info["skipped"]]
    skipped_labels = list(plan.skipped_labels) + [s for c in chunks for s in c.info.get("skipped_labels", [])]
    label_lines = plan.label_lines + sum(c.info.get("label_lines", 0) for c in chunks)
    ids = [i for c in chunks for i in c.ids]
    dup = len(ids) - len(set(ids))
    if dup:
        raise RuntimeError(f"{out_dir}: {dup} duplicate sample ids; check for copies of the "
                           "same raw file under two names")
    table, masks = build_table(dataset, chunks, plan, warnings)
    n = len(ids)
    layout = get_layout(plan.layout)
    nj = layout.num_joints
    sizes = np.concatenate([np.diff(c.offsets) for c in chunks]) * (nj * 3 * 4) if n else np.zeros(0)
    bench_names = [f"{b}_{s}" for b in plan.benchmarks for s in ("train", "test")]
    shard_tmp = out_dir / "shards.tmp"
    shutil.rmtree(shard_tmp, ignore_errors=True)
    writers = {}
    for name in bench_names:
        m = masks[name]
        count = int(m.sum())
        writers[name] = SplitShardWriter(shard_tmp / name, name.split("_")[1], count,
                                         num_shards(count, int(sizes[m].sum()), shard_size_mb),
                                         encoding=shard_encoding)
    label = table.column("label").to_numpy()
    try:
        with H5Writer(out_dir / "samples.h5", dataset=dataset, ingest_version=INGEST_VERSION,
                      normalization=normalization, layout=layout.name) as h5:
            i = 0
            for c in chunks:
                rows = c.joints()
                for j, sid in enumerate(c.ids):
                    a, b = int(c.offsets[j]), int(c.offsets[j + 1])
                    x = rows[a:b].reshape(int(c.num_frames[j]), int(c.num_persons[j]), nj, 3)
                    h5.append(sid, int(c.label[j]), x)
                    meta = {"id": sid, "index": i, "label": int(label[i]),
                            "num_frames": int(c.num_frames[j]), "num_persons": int(c.num_persons[j]),
                            "dataset": dataset}
                    npy = encode_joints(x, shard_encoding)
                    for name, w in writers.items():
                        if masks[name][i]:
                            w.write(x, meta, npy)
                    i += 1
                if on_chunk:
                    on_chunk(len(c.ids))
            for w in writers.values():
                w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    shutil.rmtree(out_dir / "shards", ignore_errors=True)
    shard_tmp.mkdir(parents=True, exist_ok=True)
    os.replace(shard_tmp, out_dir / "shards")
    meta = {"dataset": dataset, "ingest_version": INGEST_VERSION, "normalization": normalization,
            "benchmarks": list(plan.benchmarks), "num_classes": plan.num_classes,
            "class_names": plan.class_names, "layout": layout.name}
    write_manifest(out_dir, table, meta)
    notes = {sid: v for c in chunks for sid, v in c.info["notes"].items()}
    files = {}
    for c in chunks:
        files.update(c.info["files"])
    outputs = {str(p.relative_to(out_dir)): file_sha256(p)
               for p in [out_dir / "samples.h5", out_dir / "manifest.parquet",
                         *sorted((out_dir / "shards").rglob("*.tar")),
                         *sorted((out_dir / "shards").rglob(INDEX_NAME))]}
    layout_card = layout.describe()
    if layout.name != NATIVE_LAYOUT[dataset]:
        # Joints the raw layout lacks were filled: say which, and from what.
        layout_card["mapped"] = get_mapping(NATIVE_LAYOUT[dataset], layout.name).describe()
    one_frame = sorted(sid for sid, v in notes.items() if any(s.startswith("1 frame") for s in v))
    if one_frame:
        warnings.append(f"{len(one_frame)} samples have a single frame (kept; their views repeat "
                        f"the pose): {', '.join(one_frame[:10])}")
    card = {
        "dataset": dataset, "layout": layout.name, "layout_info": layout_card, "ingest_version": INGEST_VERSION, "code_version": code_version(),
        "num_samples": n, "num_classes": plan.num_classes, "class_names": plan.class_names,
        "benchmarks": {b: {s: int(masks[f"{b}_{s}"].sum()) for s in ("train", "test")}
                       for b in plan.benchmarks},
        "subsets": {k: int(v.sum()) for k, v in masks.items() if k.count("_") == 2},
        "shards": {name: len(w.written) for name, w in writers.items()},
        "shard_encoding": shard_encoding,
        "files": dict(sorted(files.items())), "outputs": outputs,
        "accounting": accounting(plan.files_seen, len(files), skipped, plan.ignored, n,
                                 label_lines if dataset == "pku2" else None, skipped_labels),
        "skipped": sorted(skipped, key=lambda s: (s["file"], s.get("path", ""))),
        "ignored": sorted(plan.ignored, key=lambda s: s["path"]),
        **({"skipped_labels": sorted(skipped_labels, key=lambda s: (s["video"], s["line"]))}
           if dataset == "pku2" else {}),
        "warnings": warnings,
        "sample_notes": notes, "normalization": normalization, "config": config,
        "fingerprint": fingerprint, **(extra or {}),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = out_dir / "card.json.tmp"
    tmp.write_text(json.dumps(card, indent=1) + "\n")
    os.replace(tmp, out_dir / "card.json")
    return card
