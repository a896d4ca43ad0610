"""ST-GCN / 2s-AGCN / MS-G3D style folders: `train_data_joint.npy` (or ST-GCN's
`train_data.npy`) float32 [N, 3, 300, 25, 2] with `train_label.pkl` = (sample names,
labels), and the same for `val_`.

Facts (2s-AGCN `data_gen/ntu_gendata.py` + `data_gen/preprocess.py`, MS-G3D the same
files; ST-GCN `tools/ntu_gendata.py` + `tools/utils/ntu_read_skeleton.py` write
`{part}_data.npy` of the same shape without `pre_normalization`):
- names are file names `SsssCcccPpppRrrrAaaa.skeleton` in `os.listdir` order (MS-G3D:
  sorted), labels action - 1; one folder per benchmark (`xsub/`, `xview/`; NTU-120,
  MS-G3D's `data_gen/ntu120_gendata.py`: `xsub/`, `xset/`), `train` = the benchmark's
  training side, `val` = its test side; the official missing-skeleton samples are left
  out (`--ignored_sample_path`).
- no denoising: 2s-AGCN / MS-G3D keep the two body slots of highest coordinate spread
  (out of the first 4 body slots of each frame), ST-GCN the first two body slots of each
  frame; zero-padded to 300 frames.
- 2s-AGCN's `pre_normalization` then (1) moves a person that starts late to frame 0 and
  pads every person's trailing empty frames by repeating its sequence, (2) subtracts
  actor 1's joint 1 in every frame (per-frame centring: the trajectory is lost), (3)
  rotates so that actor 1's hip->spine bone of frame 0 is along z and its shoulders along x.

Our reader: npy memory-mapped (allow_pickle=False), label pickle through the restricted
unpickler. It detects `pre_normalization` (actor 1's joint 1 is exactly 0 in every
present frame of the first samples) and then cuts each person's repetition padding
(the shortest L with frames L.. = frames 0..L-1 repeated), keeping our centring off
(the data is already centred, more strongly than ours). Zero padding is cut by the
importer. What cannot be undone (the rotation, per-frame centring, a late person moved to
frame 0) is recorded in the card.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from slim.ingest import ntu_names
from slim.ingest.importer import Entry, Skip, Source, SourceError
from slim.ingest.safe_load import as_rows, load_pickle, open_npy

PLAIN = ("ST-GCN tools/ntu_gendata.py: no denoising (the first 2 body slots of each frame), "
         "zero padding to 300 frames, camera coordinates (metres), not centred")
PRENORM = ("2s-AGCN/MS-G3D data_gen/ntu_gendata.py + preprocess.pre_normalization: no denoising "
           "(2 bodies of highest spread), late persons moved to frame 0, trailing frames padded "
           "by repeating the sequence (cut here), per-frame centring on actor 1's joint 1 "
           "(trajectory lost), rotated (hip-spine along z, shoulders along x); our centring "
           "is not applied on top")
PARTS = {"train": "train", "val": "test"}


def _files(folder: Path, part: str) -> tuple[Path, Path]:
    for data in (f"{part}_data_joint.npy", f"{part}_data.npy"):
        if (folder / data).is_file():
            label = folder / f"{part}_label.pkl"
            if not label.is_file():
                raise SourceError(f"{folder}: {data} without {label.name}")
            return folder / data, label
    raise SourceError(f"{folder}: no {part}_data_joint.npy (or {part}_data.npy)")


def read(dataset: str, paths: list[Path], names_file: str | None = None) -> Source:
    """Read one benchmark folder. Returns a Source (entries in file order: train, then
    val). Raises SourceError (not a folder, missing files, wrong shapes, names/labels
    that do not match the array) and safe_load.UnsafeSource."""
    if len(paths) != 1 or not paths[0].is_dir():
        raise SourceError("--from stgcn takes one folder (e.g. data/ntu/xsub) holding "
                          "train_data_joint.npy, train_label.pkl, val_data_joint.npy, val_label.pkl")
    folder = paths[0]
    parts = []
    for part in PARTS:
        data_path, label_path = _files(folder, part)
        arr = open_npy(data_path)
        if arr.ndim != 5 or arr.shape[1] != 3 or arr.shape[3] != 25 or arr.shape[4] not in (1, 2):
            raise SourceError(f"{data_path}: shape {arr.shape}, expected [N, 3, T, 25, 2]")
        lab = load_pickle(label_path)
        if not isinstance(lab, (tuple, list)) or len(lab) != 2:
            raise SourceError(f"{label_path}: expected (sample names, labels), found "
                              f"{type(lab).__name__}")
        names, labels = list(lab[0]), list(lab[1])
        if len(names) != arr.shape[0] or len(labels) != arr.shape[0]:
            raise SourceError(f"{label_path}: {len(names)} names and {len(labels)} labels for "
                              f"{arr.shape[0]} samples in {data_path.name}")
        parts.append((part, data_path, as_rows(arr), names, labels))
    bench = folder.name.lower()
    benchmarks = ntu_names.BENCHMARKS[dataset]
    warnings = []
    if bench not in benchmarks:
        warnings.append(f"folder {folder.name!r} names no {dataset} benchmark "
                        f"({', '.join(benchmarks)}); its train/val split is not cross-checked")
        bench = None
    prenorm = _is_prenormalized(parts[0][2])
    return Source(entries=_entries(parts, bench, prenorm), preprocessing=PRENORM if prenorm else PLAIN,
                  centred=prenorm, benchmarks=benchmarks, warnings=warnings,
                  info={"benchmark_of_folder": bench,
                        "parts": {p: int(a.shape[0]) for p, _, a, _, _ in parts}})


def _is_prenormalized(arr: np.ndarray, probe: int = 8) -> bool:
    """Whether actor 1's joint 1 is exactly zero in every frame where actor 1 is present,
    in the first `probe` samples that have anyone (2s-AGCN's per-frame centring)."""
    seen = 0
    for i in range(arr.shape[0]):
        x = np.asarray(arr[i])[:, :, :, 0]          # [3, T, 25]
        present = (x != 0).any(axis=(0, 2))
        if not present.any():
            continue
        if (x[:, present, 1] != 0).any():
            return False
        seen += 1
        if seen >= probe:
            break
    return seen > 0


def repetition_length(person: np.ndarray) -> int:
    """person [T, V, 3] -> the shortest L (1 <= L <= T) such that frames L.. are frames
    0..L-1 repeated (2s-AGCN's padding), else T. An all-zero person gives 0."""
    t = person.shape[0]
    if not (person != 0).any():
        return 0
    flat = person.reshape(t, -1)
    for L in np.flatnonzero((flat == flat[0]).all(axis=1))[1:]:
        L = int(L)
        reps = -(-(t - L) // L)
        if np.array_equal(flat[L:], np.tile(flat[:L], (reps, 1))[: t - L]):
            return L
    return t


def _entries(parts, bench, prenorm: bool):
    for part, data_path, arr, names, labels in parts:
        col = PARTS[part]
        for i in range(arr.shape[0]):
            raw = names[i]
            key = f"{data_path.name}#{i}"
            if not isinstance(raw, str):
                yield Skip(key, f"sample name {raw!r} is not a string")
                continue
            name = raw[:-len(".skeleton")] if raw.endswith(".skeleton") else raw
            label = labels[i]
            if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
                yield Skip(name, f"label {label!r} is not an integer")
                continue
            slots = np.array(arr[i], dtype=np.float32).transpose(1, 3, 2, 0)  # [T, M, 25, 3]
            notes = []
            if prenorm:
                lengths = [repetition_length(slots[:, m]) for m in range(slots.shape[1])]
                for m, L in enumerate(lengths):
                    slots[L:, m] = 0
                if max(lengths) < slots.shape[0]:
                    notes.append(f"repetition padding after frame {max(lengths)} cut")
            splits = {}
            if bench is not None:
                splits = {f"{bench}_{c}": c == col for c in ("train", "test")}
            yield Entry(name, name, int(label), np.ascontiguousarray(slots), splits, notes)
