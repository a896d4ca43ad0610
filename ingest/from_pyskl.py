"""pyskl / MMAction2 3D skeleton annotations (`ntu60_3danno.pkl`, `ntu120_3danno.pkl`;
MMAction2 1.x distributes the same layout as `ntu60_3d.pkl`, `ntu120_3d.pkl`, see its
`tools/data/skeleton/README.md`, read by its `PoseDataset`).

Format (pyskl `tools/data/ntu_preproc.py`, which writes the distributed files, and
`tools/data/README.md`): a pickled dict
  split:       {split name: [frame_dir, ...]}: `xsub_train`, `xsub_val`, `xview_train`,
               `xview_val` (NTU-60); `xsub_*`, `xset_*` (NTU-120)
  annotations: [{frame_dir: NTU name, label: action - 1, total_frames: T,
                 keypoint: float16 [M, T, 25, 3]}]  (M = 1 or 2)
The script parses each `.skeleton` file, skips frames with no body, ranks bodies by
motion, drops bodies of <= 11 frames and "spread" noise (x-range > 0.8 y-range in
>= 69.754 % of frames), puts up to two non-overlapping bodies per slot, trims frames
where both slots are empty at the start and end, and stores float16 camera
coordinates (metres, not centred: pyskl centres at load time with PreNormalize3D).
Its splits: xsub by the 53 NTU-120 training performers (the NTU-60 ones are a subset),
xview C001 = val, xset even setups = train. `_val` is our `_test`.

Our reader: restricted unpickler (safe_load), one entry per annotation (released after
use, so memory stays about the pickle's size), float16 -> float32, our centring on top.
An annotation that is not a dict with those keys, or whose keypoint is not
[1|2, T, 25, 3], is a reported skip; so is `None` (the script writes None for a file
without bodies).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from slim.ingest import ntu_names
from slim.ingest.importer import Entry, Skip, Source, SourceError
from slim.ingest.safe_load import load_pickle

PREPROCESSING = ("pyskl tools/data/ntu_preproc.py: pyskl's own body denoising (bodies of "
                 "<= 11 frames and spread noise dropped, ranked by motion, up to 2 actors), "
                 "frames without a body dropped, empty leading/trailing frames trimmed, "
                 "float16 camera coordinates (metres, ~3 significant digits), not centred")
SPLIT_NAMES = {"ntu60": ("xsub_train", "xsub_val", "xview_train", "xview_val"),
               "ntu120": ("xsub_train", "xsub_val", "xset_train", "xset_val")}


def our_column(split: str) -> str:
    """pyskl split name -> our manifest column (`xsub_val` -> `xsub_test`)."""
    return split[:-4] + "_test" if split.endswith("_val") else split


def read(dataset: str, paths: list[Path], names_file: str | None = None) -> Source:
    """Load one pyskl pickle. Returns a Source whose entries are Entry / Skip in file
    order. Raises SourceError (not one .pkl file, no `annotations` list / `split` dict)
    and safe_load.UnsafeSource (code in the pickle, truncated file)."""
    if len(paths) != 1 or not paths[0].is_file():
        raise SourceError("--from pyskl takes one .pkl file (e.g. ntu60_3danno.pkl)")
    path = paths[0]
    obj = load_pickle(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("annotations"), list):
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise SourceError(f"{path}: not a pyskl annotation file: expected a dict with an "
                          f"'annotations' list and a 'split' dict, found {keys}")
    split = obj.get("split")
    warnings = []
    if not isinstance(split, dict):
        warnings.append(f"{path.name}: no 'split' dict; splits follow the official rules only")
        split = {}
    wanted = SPLIT_NAMES[dataset]
    missing = [s for s in wanted if s not in split]
    if missing:
        warnings.append(f"{path.name}: split lists {', '.join(missing)} missing; the official "
                        "rules decide those columns")
    other = sorted(str(s) for s in split if s not in wanted)
    if other:
        warnings.append(f"{path.name}: split lists {', '.join(other)} are not {dataset}'s; ignored")
    members = {our_column(s): set(map(str, split[s])) for s in wanted if s in split}
    annotations = obj["annotations"]
    names = {a.get("frame_dir") for a in annotations if isinstance(a, dict)}
    listed = set().union(*members.values()) if members else set()
    unlisted = sorted(str(n) for n in listed - names)
    if unlisted:
        warnings.append(f"{len(unlisted)} names in the split lists have no annotation: "
                        f"{', '.join(unlisted[:5])}")
    del obj
    return Source(entries=_entries(path.name, annotations, members), preprocessing=PREPROCESSING,
                  centred=False, benchmarks=ntu_names.BENCHMARKS[dataset], warnings=warnings,
                  info={"split_lists": {s: len(split[s]) for s in wanted if s in split}})


def _entries(fname: str, annotations: list, members: dict):
    for i in range(len(annotations)):
        a = annotations[i]
        annotations[i] = None  # release as we go: memory stays about the pickle's size
        yield _entry(fname, i, a, members)


def _entry(fname: str, i: int, a, members: dict):
    key = f"{fname}#{i}"
    if not isinstance(a, dict):
        return Skip(key, f"annotation is {type(a).__name__}, not a dict (pyskl writes None "
                         "for a file without bodies)")
    name = a.get("frame_dir")
    if isinstance(name, str):
        key = name
    lacking = [k for k in ("frame_dir", "label", "keypoint") if k not in a]
    if lacking:
        return Skip(key, f"annotation lacks {', '.join(lacking)}")
    if not isinstance(name, str):
        return Skip(key, f"frame_dir is {type(name).__name__}, not a name")
    kp = a["keypoint"]
    if not isinstance(kp, np.ndarray) or kp.ndim != 4 or kp.shape[0] not in (1, 2) \
            or kp.shape[2:] != (25, 3) or kp.shape[1] == 0:
        shape = getattr(kp, "shape", type(kp).__name__)
        return Skip(key, f"keypoint shape {shape}, expected [1 or 2, T>0, 25, 3]")
    if not np.issubdtype(kp.dtype, np.floating):
        return Skip(key, f"keypoint dtype {kp.dtype}, expected float")
    label = a["label"]
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        return Skip(key, f"label {label!r} is not an integer")
    notes = []
    tf = a.get("total_frames")
    if tf is not None and tf != kp.shape[1]:
        notes.append(f"total_frames {tf} differs from the keypoint's {kp.shape[1]} frames "
                     "(the keypoint is used)")
    slots = np.ascontiguousarray(kp.transpose(1, 0, 2, 3), dtype=np.float32)
    splits = {col: name in m for col, m in members.items()}
    return Entry(key, name, int(label), slots, splits, notes)
