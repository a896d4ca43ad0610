"""Re-check an ingested folder: checksums, counts, official split sizes, that
samples.h5, the shards and the manifest agree sample by sample, and that each shard
folder's index (shards.json) describes its shards."""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np

from slim.ingest.work import file_sha256
from slim.ingest.h5store import H5Samples
from slim.ingest.inventory import check as check_accounting
from slim.ingest.manifest import read_manifest
from slim.ingest.shards import DEFAULT_ENCODING, ENCODINGS, INDEX_FORMAT, INDEX_NAME, write_index

#: PROTOCOLS.md: samples and (train, test) per benchmark of the official datasets.
EXPECTED = {
    "ntu60": {"num_samples": 56578, "xsub": (40091, 16487), "xview": (37646, 18932)},
    "ntu120": {"num_samples": 113945, "xsub": (63026, 50919), "xset": (54468, 59477)},
    # ingest/nwucla.py: xview is the standard protocol; xsub is this project's split.
    "nwucla": {"num_samples": 1484, "xview": (1020, 464), "xsub": (724, 760)},
}


def verify(folder: str | Path, *, check_shards: bool = True, fix_index: bool = False) -> list[str]:
    """Problems found in `folder` (an empty list means everything agrees): output
    checksums, every raw file accounted for (inventory.py's rule), counts, splits, each
    shard folder's shards.json and, unless check_shards is False, the shards sample by
    sample. fix_index: first write the shards.json of folders that lack one (datasets
    ingested before shard indexes existed; counted from the tars, hashes from card.json's
    checked outputs) and add them to card.json, then verify as usual."""
    folder = Path(folder)
    problems: list[str] = []
    card_path = folder / "card.json"
    if not card_path.is_file():
        return [f"{card_path}: missing (the ingest run did not finish; re-run it)"]
    try:
        card = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [f"{card_path}: cannot be read ({exc}); re-run the ingest"]
    if fix_index:
        fixed = _fix_indexes(folder, card)
        if isinstance(fixed, list):
            return fixed
        card = fixed
    for rel, digest in card["outputs"].items():
        p = folder / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif file_sha256(p) != digest:
            problems.append(f"{rel}: sha256 differs from card.json (file changed or corrupt)")
    on_disk = {str(p.relative_to(folder)) for p in (folder / "shards").rglob("*.tar")}
    for extra in sorted(on_disk - set(card["outputs"])):
        problems.append(f"{extra}: shard not listed in card.json")
    problems += check_accounting(card)
    problems += _check_indexes(folder, card)
    if problems:
        return problems
    table, meta = read_manifest(folder)
    h5 = H5Samples(folder / "samples.h5")
    n = card["num_samples"]
    if table.num_rows != n or len(h5) != n:
        problems.append(f"sample counts differ: card {n}, manifest {table.num_rows}, h5 {len(h5)}")
        return problems
    if table.column("id").to_pylist() != h5.ids:
        problems.append("manifest ids differ from samples.h5 ids")
    for col, arr in (("label", h5.labels), ("num_frames", h5.num_frames),
                     ("num_persons", h5.num_persons)):
        if not np.array_equal(table.column(col).to_numpy(), arr):
            problems.append(f"manifest column {col} differs from samples.h5")
    try:
        layout = h5.layout
        if h5.num_joints_stored() != layout.num_joints:
            problems.append(f"samples.h5 has {h5.num_joints_stored()} joints, its layout "
                            f"{layout.name} has {layout.num_joints}")
    except KeyError as e:
        problems.append(f"samples.h5: {e.args[0]}")
    if meta.get("layout") != h5.attrs.get("layout") or card.get("layout", meta.get("layout")) != meta.get("layout"):
        problems.append(f"layout differs: samples.h5 {h5.attrs.get('layout')!r}, manifest "
                        f"{meta.get('layout')!r}, card {card.get('layout')!r}")
    if not np.array_equal(table.column("index").to_numpy(), np.arange(n)):
        problems.append("manifest index is not 0..N-1")
    rows = np.diff(h5.offsets)
    if not np.array_equal(rows, h5.num_frames.astype(np.int64) * h5.num_persons):
        problems.append("samples.h5 offsets do not match num_frames x num_persons")
    for bench, sizes in card["benchmarks"].items():
        for split in ("train", "test"):
            got = int(table.column(f"{bench}_{split}").to_numpy().sum())
            if got != sizes[split]:
                problems.append(f"{bench}_{split}: {got} rows in manifest, card says {sizes[split]}")
    expected = EXPECTED.get(card["dataset"])
    if expected:
        if n != expected["num_samples"]:
            problems.append(f"{n} samples; the official {card['dataset']} has {expected['num_samples']}")
        for bench in meta["benchmarks"]:
            want = expected[bench]
            got = tuple(card["benchmarks"][bench][s] for s in ("train", "test"))
            if got != want:
                problems.append(f"{bench} train/test {got}; PROTOCOLS.md expects {want}")
    if check_shards and not problems:
        problems += _check_shards(folder, table, h5, meta["benchmarks"],
                                  card.get("shard_encoding", DEFAULT_ENCODING))
    return problems


def _shard_folders(folder: Path) -> list[Path]:
    root = folder / "shards"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _check_indexes(folder: Path, card: dict) -> list[str]:
    """Each shard folder's shards.json against the files: names (sorted), byte sizes and
    sha256 (the card's, already checked against the files), encoding (the card's)."""
    problems = []
    want_enc = card.get("shard_encoding", DEFAULT_ENCODING)
    for sub in _shard_folders(folder):
        rel = f"shards/{sub.name}/{INDEX_NAME}"
        path = sub / INDEX_NAME
        if not path.is_file():
            problems.append(f"{rel}: missing (ingested before shard indexes); write it with "
                            f"`slim-ingest verify --fix-index {folder}`")
            continue
        try:
            index = json.loads(path.read_text())
            entries = index["shards"]
            names = [e["name"] for e in entries]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{rel}: cannot be read ({exc}); re-run `slim-ingest verify --fix-index {folder}`")
            continue
        if index.get("format") != INDEX_FORMAT or index.get("encoding") != want_enc:
            problems.append(f"{rel}: format {index.get('format')!r} / encoding {index.get('encoding')!r}, "
                            f"expected {INDEX_FORMAT!r} / {want_enc!r}")
        tars = sorted(p.name for p in sub.glob("*.tar"))
        if names != tars:
            problems.append(f"{rel}: lists {len(names)} shards, the folder has {len(tars)} "
                            f"(first difference: {sorted(set(names) ^ set(tars))[:3]})")
            continue
        if index.get("num_samples") != sum(int(e["samples"]) for e in entries):
            problems.append(f"{rel}: num_samples {index.get('num_samples')} is not the sum of its shards'")
        for e in entries:
            p = sub / e["name"]
            digest = card["outputs"].get(f"shards/{sub.name}/{e['name']}")
            if e["bytes"] != p.stat().st_size or e["sha256"] != digest:
                problems.append(f"{rel}: entry {e['name']} (bytes {e['bytes']}, sha256 {e['sha256'][:12]}) "
                                f"does not match the shard ({p.stat().st_size} bytes, sha256 {str(digest)[:12]})")
    return problems


def _fix_indexes(folder: Path, card: dict) -> dict | list[str]:
    """Write the missing shards.json files (and list them in card.json, atomically);
    returns the new card, or problems when a shard cannot be indexed."""
    added = {}
    for sub in _shard_folders(folder):
        if (sub / INDEX_NAME).is_file():
            continue
        entries = []
        for p in sorted(sub.glob("*.tar")):
            rel = f"shards/{sub.name}/{p.name}"
            if rel not in card["outputs"]:
                return [f"{rel}: shard not listed in card.json; cannot index it (re-run the ingest)"]
            try:
                with tarfile.open(p) as tar:
                    keys = {m.name.split(".", 1)[0] for m in tar}
            except (OSError, tarfile.TarError) as exc:
                return [f"{rel}: cannot be read ({exc}); re-run the ingest"]
            entries.append({"name": p.name, "samples": len(keys), "bytes": p.stat().st_size,
                            "sha256": card["outputs"][rel]})
        path = write_index(sub, entries, card.get("shard_encoding", DEFAULT_ENCODING))
        added[f"shards/{sub.name}/{INDEX_NAME}"] = file_sha256(path)
    if added:
        card = {**card, "outputs": {**card["outputs"], **added}}
        tmp = folder / "card.json.tmp"
        tmp.write_text(json.dumps(card, indent=1) + "\n")
        os.replace(tmp, folder / "card.json")
    return card


def _decode_member(item: dict) -> np.ndarray:
    """The joints of a shard sample ({"npy" or "npy.gz": bytes}) as stored (f32 or f16)."""
    raw = item["npy"] if "npy" in item else gzip.decompress(item["npy.gz"])
    return np.load(io.BytesIO(raw), allow_pickle=False)


def _check_shards(folder: Path, table, h5: H5Samples, benchmarks: list[str],
                  encoding: str = DEFAULT_ENCODING) -> list[str]:
    problems = []
    ids = h5.ids
    dtype = np.dtype(ENCODINGS[encoding][0])
    for bench in benchmarks:
        for split in ("train", "test"):
            want = np.flatnonzero(table.column(f"{bench}_{split}").to_numpy())
            seen = []
            sub = folder / "shards" / f"{bench}_{split}"
            counts = {e["name"]: e["samples"] for e in json.loads((sub / INDEX_NAME).read_text())["shards"]}
            for tar_path in sorted(sub.glob("*.tar")):
                before = len(seen)
                with tarfile.open(tar_path) as tar:
                    pending: dict[str, dict] = {}
                    for member in tar:
                        key, ext = member.name.split(".", 1)
                        data = tar.extractfile(member).read()
                        pending.setdefault(key, {})[ext] = data
                        if len(pending[key]) == 2:
                            item = pending.pop(key)
                            meta = json.loads(item["json"])
                            i = int(meta["index"])
                            x = _decode_member(item)
                            if (meta["id"] != ids[i] or x.dtype != dtype
                                    or not np.array_equal(x, h5.read(i).astype(dtype))):
                                problems.append(f"{tar_path.name}: sample {meta['id']} differs "
                                                "from samples.h5")
                            seen.append(i)
                    if pending:
                        problems.append(f"{tar_path.name}: incomplete samples {sorted(pending)[:3]}")
                if len(seen) - before != counts.get(tar_path.name):
                    problems.append(f"shards/{sub.name}/{INDEX_NAME}: {tar_path.name} holds {len(seen) - before} "
                                    f"samples, the index says {counts.get(tar_path.name)}")
            if seen != want.tolist():
                problems.append(f"shards/{bench}_{split}: {len(seen)} samples, manifest has "
                                f"{len(want)} (or a different order)")
    return problems
