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
    """Bytes of one video -> float32 [F, 2, 25, 3] (metres; an absent person is zeros)."""
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
    return v.astype(np.float32).reshape(len(rows), 2, 25, 3)


def parse_labels(text: str, num_frames: int, notes: list[str]) -> list[Segment]:
    """Label file text -> segments, clipped to [1, num_frames]; quirks go to notes."""
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        parts = [p.strip() for p in line.strip().split(",") if p.strip()]
        if not parts:
            continue
        if len(parts) < 3:
            notes.append(f"label line {i}: fewer than 3 values, ignored")
            continue
        try:
            label, start, end = int(float(parts[0])), int(float(parts[1])), int(float(parts[2]))
        except ValueError:
            notes.append(f"label line {i}: not numbers, ignored")
            continue
        if not 1 <= label <= NUM_CLASSES:
            notes.append(f"label line {i}: label {label} outside 1..{NUM_CLASSES}, ignored")
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
            notes.append(f"label line {i}: segment outside the video, ignored")
            continue
        out.append(Segment(label - 1, start, end, i))
    return out


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


def find_pku(raw_dirs: list[Path]) -> tuple[dict[str, Path], dict[str, Path], Path | None, list[str]]:
    """({video: skeleton path}, {video: label path}, split file or None, warnings).

    A raw path may be a .zip (the downloads `PKU_Skeleton_Renew.zip`,
    `Train_Label_PKU_final.zip`): its members become `archive.zip::member` paths (read
    with nwucla.read_bytes, no unpacking); a member is a label file when a folder in its
    path or the archive's own name contains "label". Raises ValueError for a .zip that is
    not an archive."""
    import zipfile

    from slim.ingest.nwucla import MEMBER_SEP
    skel: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    split = None
    warnings = []

    def add(p: Path, stem: str, is_label: bool) -> None:
        bucket = labels if is_label else skel
        if stem in bucket:
            warnings.append(f"{stem}: found twice ({bucket[stem]} and {p}); using the first")
        else:
            bucket[stem] = p

    for d in raw_dirs:
        d = Path(d)
        if d.is_file() and d.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(d) as z:
                    members = sorted(n for n in z.namelist() if n.lower().endswith(".txt"))
            except zipfile.BadZipFile:
                raise ValueError(f"{d}: not a zip archive") from None
            for n in members:
                parts = n.split("/")
                p = Path(f"{d}{MEMBER_SEP}{n}")
                stem = parts[-1][:-4]
                if parts[-1] == "cross_subject_v2.txt":
                    split = split or p
                elif VIDEO_RE.fullmatch(stem):
                    add(p, stem, "label" in d.stem.lower()
                        or any("label" in q.lower() for q in parts[:-1]))
            continue
        for p in sorted(d.rglob("*.txt")):
            if p.name == "cross_subject_v2.txt":
                split = split or p
                continue
            if not VIDEO_RE.fullmatch(p.stem):
                continue
            add(p, p.stem, any("label" in part.lower() for part in p.relative_to(d).parts[:-1]))
    return dict(sorted(skel.items())), labels, split, warnings
