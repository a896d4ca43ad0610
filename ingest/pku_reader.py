"""PKU-MMD phase II: skeleton videos, label files and the cross-subject split.

Accepted layout under each `--raw` root (searched recursively): skeleton files
`AxxNyy-V.txt` in any folder whose name does not contain "label" (e.g. `skeleton/`,
`PKU_Skeleton_Renew/`), label files of the same names in a folder whose name contains
"label" (e.g. `label/`, `Train_Label_PKU_final/`), and optionally `cross_subject_v2.txt`.

Label rows are `label,start,end,confidence`; start and end are read as 1-based, inclusive
frame numbers (rows start-1 .. end-1 of the skeleton file). Quirks handled and reported:
start > end (swapped), start 0 (read as 1), end past the video (clipped), trailing commas
and blank lines.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slim.ingest.coords import to_float32_finite
from slim.ingest.inventory import Inventory, strip_ext
from slim.ingest.ntu_reader import BadFile
from slim.ingest.ntu_names import resource_text

VIDEO_RE = re.compile(r"A(\d{2})N(\d{2})-([LMR])")
NUM_CLASSES = 51
VALUES_PER_ROW = 150


@dataclass(frozen=True)
class Segment:
    """One labelled action instance: label 0-based, start/end 1-based inclusive rows."""
    label: int
    start: int
    end: int
    line: int       # 1-based line in the label file (the sample id suffix)


def parse_pku_skeleton(data: bytes) -> np.ndarray:
    """Bytes of one video -> float32 [F, 2, 25, 3] (metres; an absent person is zeros).
    Infinite, float32-overflowing and |x| > 100 m values are NaN (`coords`), so the
    frames holding them are dropped like NaN frames. Raises BadFile."""
    if not data.strip():
        raise BadFile("empty file")
    if b"\0" in data or not data.isascii():
        raise BadFile("binary file (not text)")
    lines = data.split(b"\n")
    rows = [ln for ln in lines if ln.strip()]
    tok = data.split()
    if len(tok) != len(rows) * VALUES_PER_ROW:
        bad = next((i for i, r in enumerate(rows) if len(r.split()) != VALUES_PER_ROW), None)
        raise BadFile(f"row {bad + 1 if bad is not None else '?'} does not have "
                      f"{VALUES_PER_ROW} values")
    try:
        v = np.fromiter(map(float, tok), dtype=np.float64, count=len(tok))
    except ValueError:
        raise BadFile("non-number token in a skeleton row") from None
    out, _, _ = to_float32_finite(v.reshape(len(rows), 2, 25, 3))
    return out


def parse_labels(text: str, num_frames: int, notes: list[str],
                 dropped: list[tuple[int, str]] | None = None) -> list[Segment]:
    """Label file text -> segments, clipped to [1, num_frames]. Quirks that are repaired
    go to notes; every non-blank line that gives no segment goes to `dropped` as (line,
    reason) (to notes when `dropped` is None), so non-blank lines = segments + dropped."""
    out = []
    drop = (lambda i, why: dropped.append((i, why))) if dropped is not None else \
        (lambda i, why: notes.append(f"label line {i}: {why}"))
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.strip().split(",") if p.strip()]
        if len(parts) < 3:
            drop(i, f"{len(parts)} values, need label,start,end; ignored")
            continue
        try:
            label, start, end = int(float(parts[0])), int(float(parts[1])), int(float(parts[2]))
        except ValueError:
            drop(i, "not numbers, ignored")
            continue
        if not 1 <= label <= NUM_CLASSES:
            drop(i, f"label {label} outside 1..{NUM_CLASSES}, ignored")
            continue
        if start > end:
            notes.append(f"label line {i}: start {start} > end {end}, swapped")
            start, end = end, start
        if start < 1:
            notes.append(f"label line {i}: start {start}, read as 1")
            start = 1
        if end > num_frames:
            notes.append(f"label line {i}: end {end} past the video's {num_frames} frames, clipped")
            end = num_frames
        if start > end:
            drop(i, f"segment outside the video's {num_frames} frames, ignored")
            continue
        out.append(Segment(label - 1, start, end, i))
    return out


def count_label_lines(text: str) -> int:
    """Non-blank lines of a label file: each must become a sample or a skipped entry."""
    return sum(1 for ln in text.splitlines() if ln.strip())


def read_split_file(text: str) -> tuple[set[str], set[str]]:
    """`cross_subject_v2.txt` -> (train videos, test videos). Headers `Training videos:`
    and `Validataion videos:` (sic; `Validation`/`Testing` accepted too)."""
    train: set[str] = set()
    test: set[str] = set()
    target = None
    for line in text.splitlines():
        low = line.strip().lower()
        if low.startswith("training"):
            target = train
        elif low.startswith(("validataion", "validation", "testing", "test")):
            target = test
        if target is not None:
            target.update(m.group(0) for m in VIDEO_RE.finditer(line))
    return train, test


def default_test_videos() -> set[str]:
    """The 234 cross-subject test videos shipped with the project."""
    return {m.group(0) for m in VIDEO_RE.finditer(resource_text("pku2_xsub_test_videos.txt"))}


def class_names() -> list[str]:
    return [ln.strip() for ln in resource_text("pku2_action_names.txt").splitlines() if ln.strip()]


def find_pku(inv: Inventory) -> tuple[dict[str, Path], dict[str, Path], Path | None, list[tuple[Path, Path]]]:
    """From the raw files: ({video: skeleton path}, {video: label path}, split file or
    None, [(duplicate, first)]). `.txt` matches in any case; the split file is noted
    in the inventory as read metadata."""
    skel: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    split = None
    dupes = []
    for p in inv.files:
        if p.name.lower() == "cross_subject_v2.txt":
            if split is None:
                split = p
                inv.note(p, "the X-Sub split list (read for the xsub split), not a sample")
            else:
                inv.note(p, f"a second split list (the first, {inv.entry(split, '')['path']}, is used)")

    def wanted(p: Path, root: Path) -> bool:
        return VIDEO_RE.fullmatch(strip_ext(p.name, ".txt")) is not None

    for p in inv.take(".txt", wanted):
        root = inv.files[p]
        stem = strip_ext(p.name, ".txt")
        # A label file sits in a folder named like "label" (Train_Label_PKU_final/), or in
        # an archive so named (Train_Label_PKU_final.zip, members at its root).
        is_label = (any("label" in part.lower() for part in p.relative_to(root).parts[:-1])
                    or (str(root).endswith("::") and "label" in root.name.lower()))
        bucket = labels if is_label else skel
        if stem in bucket:
            dupes.append((p, bucket[stem]))
            continue
        bucket[stem] = p
    return dict(sorted(skel.items())), labels, split, dupes
