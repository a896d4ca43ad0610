"""Re-check an ingested folder: checksums, counts, official split sizes, and that
samples.h5, the shards and the manifest agree sample by sample."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np

from slim.ingest.work import file_sha256
from slim.ingest.h5store import H5Samples
from slim.ingest.inventory import check as check_accounting
from slim.ingest.manifest import read_manifest

#: PROTOCOLS.md: samples and (train, test) per benchmark of the official datasets.
EXPECTED = {
    "ntu60": {"num_samples": 56578, "xsub": (40091, 16487), "xview": (37646, 18932)},
    "ntu120": {"num_samples": 113945, "xsub": (63026, 50919), "xset": (54468, 59477)},
    # ingest/nwucla.py: xview is the standard protocol; xsub is this project's split.
    "nwucla": {"num_samples": 1484, "xview": (1020, 464), "xsub": (724, 760)},
}


def verify(folder: str | Path, *, check_shards: bool = True) -> list[str]:
    """Problems found in `folder` (an empty list means everything agrees): output
    checksums, every raw file accounted for (inventory.py's rule), counts, splits and,
    unless check_shards is False, the shards sample by sample."""
    folder = Path(folder)
    problems: list[str] = []
    card_path = folder / "card.json"
    if not card_path.is_file():
        return [f"{card_path}: missing (the ingest run did not finish; re-run it)"]
    try:
        card = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [f"{card_path}: cannot be read ({exc}); re-run the ingest"]
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
        problems += _check_shards(folder, table, h5, meta["benchmarks"])
    return problems


def _check_shards(folder: Path, table, h5: H5Samples, benchmarks: list[str]) -> list[str]:
    problems = []
    ids = h5.ids
    for bench in benchmarks:
        for split in ("train", "test"):
            want = np.flatnonzero(table.column(f"{bench}_{split}").to_numpy())
            seen = []
            for tar_path in sorted((folder / "shards" / f"{bench}_{split}").glob("*.tar")):
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
                            x = np.load(io.BytesIO(item["npy"]), allow_pickle=False)
                            if meta["id"] != ids[i] or not np.array_equal(x, h5.read(i)):
                                problems.append(f"{tar_path.name}: sample {meta['id']} differs "
                                                "from samples.h5")
                            seen.append(i)
                    if pending:
                        problems.append(f"{tar_path.name}: incomplete samples {sorted(pending)[:3]}")
            if seen != want.tolist():
                problems.append(f"shards/{bench}_{split}: {len(seen)} samples, manifest has "
                                f"{len(want)} (or a different order)")
    return problems
