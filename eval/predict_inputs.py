"""What `slim-eval predict` reads: raw NTU `.skeleton` files, PKU-MMD skeleton files (whole
videos), folders of them, and ingested data folders. Raw files go through the ingest's
own preprocessing functions (ingest.datasets: denoising, two-actor assembly, NaN-frame
removal, centring), so a raw file and its ingested sample give the same joints, bit for
bit. A file that cannot be read is reported as skipped with its reason; nothing here
raises for one bad file."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from slim.ingest import ntu_names, pku_reader
from slim.ingest.datasets import ntu_actor_slots, ntu_sample_joints, pku_segment_joints
from slim.ingest.ntu_reader import BadFile

from .classifier import default_layout

FORMATS_HINT = ("NTU RGB+D `.skeleton` files, PKU-MMD skeleton files `AxxNyy-V.txt` (150 values "
                "a line), folders of them, or a folder written by slim-ingest")


class PredictInputError(ValueError):
    """Inputs that cannot be used at all (not one file among others): message + hint."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


@dataclass
class Item:
    """One sequence to classify: joints float32 [T, M, V, 3] (metres, centred as by
    ingest), its label (0-based, None when unknown), and for a window of a long
    recording its 1-based inclusive frames `start`..`end` of `video`."""
    id: str
    source: str
    joints: np.ndarray
    label: int | None = None
    video: str | None = None
    start: int | None = None
    end: int | None = None


@dataclass
class Source:
    """A discovered input: kind "ntu" | "pku" | "data", its path."""
    kind: str
    path: Path


@dataclass
class Skipped:
    source: str
    reason: str


@dataclass
class Discovery:
    sources: list[Source] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _raw_kind(path: Path) -> str | None:
    if path.suffix.lower() == ".skeleton":
        return "ntu"
    if path.suffix.lower() == ".txt":
        return "pku"
    return None


def discover(inputs: list[str | Path]) -> Discovery:
    """Sort inputs into sources. A folder with manifest.parquet is an ingested dataset;
    another folder is searched recursively for `*.skeleton` and PKU-named `AxxNyy-V.txt`
    files (not in folders whose name contains "label"). A file of another suffix or a
    missing path is skipped with the reason."""
    d = Discovery()
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            if (p / "manifest.parquet").is_file():
                d.sources.append(Source("data", p))
                continue
            found = [Source("ntu", f) for f in sorted(p.rglob("*.skeleton"))]
            found += [Source("pku", f) for f in sorted(p.rglob("*.txt"))
                      if pku_reader.VIDEO_RE.fullmatch(f.stem)
                      and not any("label" in part.lower() for part in f.relative_to(p).parts[:-1])]
            if not found:
                d.skipped.append(Skipped(str(p), "folder holds no .skeleton or AxxNyy-V.txt file "
                                                 "and no manifest.parquet"))
            d.sources.extend(found)
        elif p.is_file():
            kind = _raw_kind(p)
            if kind is None:
                d.skipped.append(Skipped(str(p), f"unknown file format {p.suffix or '(no suffix)'!r}: "
                                                 f"expected {FORMATS_HINT}"))
            else:
                d.sources.append(Source(kind, p))
        else:
            d.skipped.append(Skipped(str(p), "no such file or folder"))
    return d


def raw_layout() -> str:
    """Layout of what the raw readers produce (Kinect v2, 25 joints; as ingest writes)."""
    return default_layout()


def ntu_label(stem: str, num_classes: int) -> int | None:
    """0-based action of an NTU name `SsssCcccPpppRrrrAaaa` (None for another name or an
    action outside the model's classes)."""
    f = ntu_names.parse_name(stem)
    if f is None or not 1 <= f["action"] <= num_classes:
        return None
    return f["action"] - 1


def read_raw(src: Source) -> np.ndarray:
    """The unsegmented sequence of a raw file: NTU actor slots after denoising and
    assembly, or a PKU video, float32 [F, S, 25, 3] (absent = zeros, not centred).
    Raises BadFile or OSError."""
    data = src.path.read_bytes()
    if src.kind == "ntu":
        return ntu_actor_slots(data)[0]
    return pku_reader.parse_pku_skeleton(data)


def whole_item(src: Source, num_classes: int) -> Item:
    """A raw file as one sample: NTU exactly as ingest stores it (ntu_sample_joints); a
    PKU video as ingest would store one segment spanning all its frames. Raises BadFile
    (with the reason), OSError."""
    if src.kind == "ntu":
        joints, _notes = ntu_sample_joints(src.path.read_bytes())
        return Item(src.path.stem, str(src.path), joints, ntu_label(src.path.stem, num_classes))
    video = pku_reader.parse_pku_skeleton(src.path.read_bytes())
    try:
        joints = pku_segment_joints(video, 1, video.shape[0], [])
    except ValueError as e:
        raise BadFile(str(e)) from None
    return Item(src.path.stem, str(src.path), joints, None, src.path.stem, 1, int(video.shape[0]))


def window_bounds(num_frames: int, window: int, stride: int) -> list[tuple[int, int]]:
    """1-based inclusive (start, end) of sliding windows of `window` frames every
    `stride` frames, the last one moved to end at the last frame so that every frame is
    covered; one window of the whole sequence when it is shorter than `window`."""
    if window < 1 or stride < 1:
        raise ValueError(f"window {window} and stride {stride} must be >= 1")
    if num_frames <= window:
        return [(1, num_frames)]
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return [(s + 1, s + window) for s in starts]


def window_items(src: Source, window: int, stride: int, min_frames: int
                 ) -> tuple[list[Item], int, int]:
    """Windows of a raw recording, each preprocessed as ingest preprocesses a PKU-MMD
    segment (pku_segment_joints: frames without anyone dropped, centred). Returns
    (items, frames of the recording, windows left out for having fewer than
    `min_frames` frames with a person). Raises BadFile, OSError."""
    seq = read_raw(src)
    items, empty = [], 0
    for a, b in window_bounds(seq.shape[0], window, stride):
        try:
            joints = pku_segment_joints(seq, a, b, [])
        except ValueError:
            empty += 1
            continue
        if joints.shape[0] < min_frames:
            empty += 1
            continue
        items.append(Item(f"{src.path.stem}:{a}-{b}", str(src.path), joints, None, src.path.stem, a, b))
    return items, int(seq.shape[0]), empty


def data_items(data_dir: Path, split: str | None) -> tuple[Iterator[Item], int, dict]:
    """(items in manifest order, their count, manifest meta) of an ingested folder, all
    rows or manifest column `split` (e.g. xsub_test). Raises PredictInputError."""
    from slim.ingest.manifest import read_manifest
    from slim.pipeline.sources import H5Dataset
    try:
        _table, meta = read_manifest(data_dir)
        ds = H5Dataset(data_dir, split=split)
    except (KeyError, ValueError, FileNotFoundError, OSError) as e:
        raise PredictInputError(f"{data_dir}: {str(e).strip(chr(34))}",
                                "pass --split with one of the manifest's bool columns (e.g. xsub_test), "
                                "or re-ingest the folder") from None

    def gen():
        for row in ds.rows:
            it = ds.item(int(row))
            yield Item(str(it["id"]), str(data_dir), it["joints"], int(it["label"]))
    return gen(), len(ds), meta
