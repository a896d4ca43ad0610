"""CTR-GCN / SGN-derived npz files (`NTU60_CS.npz`, `NTU60_CV.npz`, `NTU120_CSub.npz`,
`NTU120_CSet.npz`; MAMP and SLiM releases use the same files).

Facts (CTR-GCN `data/ntu/seq_transformation.py`, `data/ntu120/seq_transformation.py`,
`feeders/feeder_ntu.py`; SGN's `data/ntu/seq_transformation.py` is the same code up to
the split, which writes h5 instead):
- `x_train` / `x_test` float32 [N, 300, 150] = [N, T, 2 actors x 25 joints x 3] (the
  feeder reshapes to (N, T, 2, 25, 3)); `y_train` / `y_test` one-hot [N, 60 or 120].
- the samples are denoised by `get_raw_denoised_data.py` (the rules our raw ingest
  follows) and translated by `seq_translation`: minus actor 1's joint 2 (spine middle,
  our joint 1) in its first nonzero frame, frames where an actor of a two-actor sample is
  missing set back to zero; the same rule as our centring, so none is added.
- `align_frames` pads every sample with zero frames to `frames_cnt.max()` (300) and fills
  the second slot of a one-actor sample: with zeros in `data/ntu/` (`np.zeros_like`, NTU-60
  files), with a copy of actor 1 in `data/ntu120/` (`np.hstack((ske_joints, ske_joints))`,
  NTU-120 files). A second slot equal to the first in every frame is detected and stored
  as one person (importer.drop_copy_actor), so both give the same samples.
- no names are stored. The order is that of `statistics/skes_available_name.txt`
  (56,578 / 113,945 names, sorted, the missing-skeleton samples left out) taken by
  `get_indices`: for CS/CSub the samples of each training (test) performer in the order
  of the id list (1, 2, 4, ... / 3, 6, 7, ...), for CSet each setup in turn, for CV the
  test side is camera 1 in file order, the training side camera 2 then camera 3.

Names: with `--names skes_available_name.txt` (from the CTR-GCN repository) and counts
that match, names are recovered by that order and checked against every one-hot label
(a single disagreement rejects them all). Otherwise samples get ids
`<file stem>_<part>_<index>`, no name-derived columns, splits from the file, and a warning.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from slim.ingest import ntu_names
from slim.ingest.importer import Entry, Skip, Source, SourceError
from slim.ingest.safe_load import npz_keys, npz_memmap, npz_rows

PREPROCESSING = ("CTR-GCN data/ntu*/ get_raw_denoised_data.py + seq_transformation.py: denoised "
                 "(the rules our raw ingest follows), translated by actor 1's spine middle in its "
                 "first present frame (our centring rule), zero-padded to 300 frames, the second "
                 "slot of one-actor samples zero-filled (data/ntu, NTU-60) or a copy of actor 1 "
                 "(data/ntu120, NTU-120); both removed here")
#: evaluation in the file name -> our benchmark.
EVALUATIONS = {"CS": "xsub", "CV": "xview", "CSUB": "xsub", "CSET": "xset"}
KEYS = ("x_train", "y_train", "x_test", "y_test")


def evaluation_of(path: Path) -> str | None:
    """`NTU60_CS.npz` -> 'xsub'; None when the stem ends in no known evaluation."""
    return EVALUATIONS.get(path.stem.rsplit("_", 1)[-1].upper())


def reference_order(names: list[str], bench: str, dataset: str) -> tuple[list[str], list[str]]:
    """(train names, test names) in the order CTR-GCN's `get_indices` lays them out from
    the names list (see module docstring)."""
    f = [ntu_names.parse_name(n) for n in names]
    if bench == "xsub":
        train_ids = sorted(ntu_names.XSUB_TRAIN_120 if dataset == "ntu120" else ntu_names.XSUB_TRAIN_60)
        top = 106 if dataset == "ntu120" else 40
        test_ids = [i for i in range(1, top + 1) if i not in train_ids]
        key = "performer"
    elif bench == "xset":
        train_ids = [i for i in range(1, 33) if i % 2 == 0]
        test_ids = [i for i in range(1, 33) if i % 2 == 1]
        key = "setup"
    else:
        train_ids, test_ids, key = [2, 3], [1], "camera"

    def pick(ids):
        by = {}
        for n, d in zip(names, f):
            by.setdefault(d[key], []).append(n)
        return [n for i in ids for n in by.get(i, [])]
    return pick(train_ids), pick(test_ids)


def read_names(path: str) -> list[str]:
    """Names of skes_available_name.txt (one a line; blank lines ignored). Raises
    SourceError for a line that is not an NTU name."""
    out = []
    for i, ln in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines()):
        ln = ln.strip()
        if not ln:
            continue
        if ntu_names.parse_name(ln) is None:
            raise SourceError(f"{path}: line {i + 1} {ln[:40]!r} is not an NTU name")
        out.append(ln)
    return out


def _load(path: Path, n_cls: int):
    keys = npz_keys(path)
    missing = [k for k in KEYS if k not in keys]
    if missing:
        raise SourceError(f"{path}: keys {', '.join(missing)} missing (found {', '.join(keys)}); "
                          "expected x_train, y_train, x_test, y_test")
    parts = {}
    for part in ("train", "test"):
        x, y = npz_rows(path, f"x_{part}"), npz_memmap(path, f"y_{part}")
        if x.ndim != 3 or x.shape[2] != 150:
            raise SourceError(f"{path}: x_{part} shape {x.shape}, expected [N, T, 150]")
        if y.ndim != 2 or y.shape[0] != x.shape[0]:
            raise SourceError(f"{path}: y_{part} shape {y.shape}, expected [{x.shape[0]}, {n_cls}]")
        if y.shape[1] != n_cls:
            raise SourceError(f"{path}: y_{part} has {y.shape[1]} classes; this dataset has {n_cls}")
        parts[part] = (x, np.asarray(y))
    return parts


def _labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """one-hot [N, C] -> (labels int [N], ok bool [N]: exactly one 1 and zeros elsewhere)."""
    ok = ((y == 1).sum(axis=1) == 1) & (((y == 0) | (y == 1)).all(axis=1))
    return np.argmax(y, axis=1), ok


def read(dataset: str, paths: list[Path], names_file: str | None = None) -> Source:
    """Read one or two npz files of `dataset`. Samples come from the first file; the
    second (the other evaluation) is used to cross-check names and splits. Raises
    SourceError (wrong keys, shapes, file names) and safe_load.UnsafeSource."""
    if not 1 <= len(paths) <= 2 or not all(p.is_file() for p in paths):
        raise SourceError("--from ctrgcn takes one or two .npz files (e.g. NTU60_CS.npz NTU60_CV.npz)")
    n_cls = ntu_names.OFFICIAL[dataset][1]
    benches = []
    for p in paths:
        b = evaluation_of(p)
        if b is None or b not in ntu_names.BENCHMARKS[dataset]:
            raise SourceError(f"{p.name}: the name does not end in one of {dataset}'s evaluations "
                              f"({'CS, CV' if dataset == 'ntu60' else 'CSub, CSet'}), e.g. "
                              f"{'NTU60_CS.npz' if dataset == 'ntu60' else 'NTU120_CSub.npz'}")
        benches.append(b)
    loaded = [_load(p, n_cls) for p in paths]
    warnings = []
    names = read_names(names_file) if names_file else None
    recovered = []
    if names is not None:
        for p, b, parts in zip(paths, benches, loaded):
            order = reference_order(names, b, dataset)
            got = {part: parts[part][0].shape[0] for part in ("train", "test")}
            if (len(order[0]), len(order[1])) != (got["train"], got["test"]):
                warnings.append(f"{p.name}: {got['train']}/{got['test']} samples but the names list "
                                f"gives {len(order[0])}/{len(order[1])} for {b}: names not recovered")
                recovered = None
                break
            bad = []
            for part, ns in zip(("train", "test"), order):
                lab, _ = _labels(parts[part][1])
                acts = np.array([int(n[-3:]) - 1 for n in ns])
                bad += [ns[i] for i in np.flatnonzero(acts != lab)]
            if bad:
                warnings.append(f"{p.name}: {len(bad)} labels disagree with the names recovered by "
                                f"the reference order (e.g. {', '.join(bad[:3])}): names not recovered")
                recovered = None
                break
            recovered.append(order)
    else:
        warnings.append("no sample names: the npz stores none; give --names "
                        "skes_available_name.txt (CTR-GCN data/ntu*/statistics/) to recover them "
                        "from the reference order")
    named = bool(recovered)
    if not named and len(paths) == 2:
        warnings.append(f"{paths[1].name} not used: without names its samples cannot be matched "
                        f"to {paths[0].name}'s")
    benchmarks = ntu_names.BENCHMARKS[dataset] if named else (benches[0],)
    info = {"evaluations": {p.name: b for p, b in zip(paths, benches)},
            "names_file": names_file, "names_recovered": named}
    return Source(entries=_entries(paths[0], benches[0], loaded[0], recovered[0] if named else None),
                  preprocessing=PREPROCESSING, centred=True, benchmarks=benchmarks, named=named,
                  warnings=warnings, info=info)


def _entries(path: Path, bench: str, parts: dict, order):
    for k, part in enumerate(("train", "test")):
        x, y = parts[part]
        labels, ok = _labels(y)
        ns = order[k] if order is not None else None
        for i in range(x.shape[0]):
            key = f"{path.stem}_{part}_{i:06d}"
            name = ns[i] if ns is not None else None
            if not ok[i]:
                yield Skip(name or key, f"y_{part}[{i}] is not one-hot")
                continue
            slots = np.array(x[i], dtype=np.float32).reshape(x.shape[1], 2, 25, 3)
            splits = {f"{bench}_{c}": c == part for c in ("train", "test")}
            yield Entry(name or key, name, int(labels[i]), slots, splits, [])
