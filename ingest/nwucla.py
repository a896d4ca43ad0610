"""Northwestern-UCLA Multiview Action 3D (NW-UCLA): the JSON files of CTR-GCN's data
instructions (`all_sqe/aAA_sSS_eEE_vVV.json` = action, subject, episode, view), read from
a folder or straight from the zip archive users download.

Facts (../shared/datasets/SOURCES.md): each file is `{"file_name", "skeletons": [T][20][3],
"label"}`; 20 Kinect v1 joints (layout `kinect_v1_20`), metres, camera space (y up);
one person; T = 1-201 frames; 10 actions a01-a06, a08, a09, a11, a12 with `label` 1-10 in
that order; 10 subjects; 3 views (516 / 504 / 464 files).

Benchmarks:
- `xview` (the standard protocol of Wang et al., CVPR 2014, used by CTR-GCN and its
  successors): train on views 1 and 2 (1,020 samples), test on view 3 (464).
- `xsub` (for completeness; NW-UCLA has no official cross-subject split, so its figures
  are not comparable with published ones): train on the odd subjects 1, 3, 5, 7, 9 (724
  samples), test on the even ones 2, 4, 6, 8, 10 (760); interleaved like NTU's list and
  balanced, every subject seen in all three views on its side.

Rules: a file whose JSON does not parse, whose `skeletons` is not [T][20][3] (wrong joint
count, ragged frames, no frames), or whose `label` disagrees with the action in its name
is skipped with the reason; non-finite coordinates are treated like NaN (the frame is
dropped, as NTU's). A 1-frame sequence is kept (the standard xview sizes include the two
there are) and reported in the card: its views repeat the one pose.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from pathlib import Path

from dataclasses import dataclass, field

import numpy as np

from slim.ingest.coords import describe, to_float32_finite
from slim.ingest.inventory import other_reason
from slim.ingest.ntu_reader import BadFile

NAME_RE = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})", re.IGNORECASE)
FIELDS = ("action", "subject", "episode", "view")
#: Action codes in label order (label 1 = a01, ..., 10 = a12).
ACTIONS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)
#: Names from the dataset's description (Wang et al. 2014).
CLASS_NAMES = ("pick up with one hand", "pick up with two hands", "drop trash", "walk around",
               "sit down", "stand up", "donning", "doffing", "throw", "carry")
NUM_JOINTS = 20
NATIVE_LAYOUT = "kinect_v1_20"
BENCHMARKS = ("xview", "xsub")
XVIEW_TRAIN_VIEWS = frozenset({1, 2})
XSUB_TRAIN_SUBJECTS = frozenset({1, 3, 5, 7, 9})
#: `<archive>.zip` + this + member name: a raw file inside an archive.
MEMBER_SEP = "::"


def parse_name(stem: str) -> dict[str, int] | None:
    """`a01_s02_e03_v01` -> {action: 1, subject: 2, episode: 3, view: 1}; None when the
    name does not follow the pattern or names an action NW-UCLA does not have."""
    m = NAME_RE.fullmatch(stem)
    if not m:
        return None
    f = dict(zip(FIELDS, map(int, m.groups())))
    return f if f["action"] in ACTIONS else None


@dataclass
class Found:
    """What `find_files` saw. files: {stem: (path or `archive::member`, path as shown in
    the card)} in name order; skipped / ignored: card entries {file, path, reason}; seen:
    every file or member looked at (the accounting's "files seen" and the fingerprint)."""
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)


def find_files(raw: list[Path]) -> Found:
    """`*.json` files (case-insensitive) under folders (recursive) and inside zip
    archives, every other file accounted for (inventory.py's rule: files seen = ingested
    + skipped + ignored). Skipped: JSON names that are not aAA_sSS_eEE_vVV with an NW-UCLA
    action, and second copies of a sample; ignored: files that are not `.json` (with
    inventory's reason). Raises BadFile for a .zip that is not an archive."""
    out = Found()
    first: dict[str, str] = {}

    def add(name: str, where: str, shown: str) -> None:
        out.seen.append(where)
        base = name.rsplit("/", 1)[-1]
        if not base.lower().endswith(".json") or base.startswith("._"):
            out.ignored.append({"file": base, "path": shown,
                                "reason": other_reason(Path(name), "NW-UCLA aAA_sSS_eEE_vVV.json")})
            return
        stem = base[:-len(".json")]
        if parse_name(stem) is None:
            out.skipped.append({"file": base, "path": shown,
                                "reason": "name is not aAA_sSS_eEE_vVV with an NW-UCLA action"})
        elif stem in out.files:
            out.skipped.append({"file": base, "path": shown,
                                "reason": f"a second file for {stem} (the first, {first[stem]}, is read)"})
        else:
            out.files[stem] = (where, shown)
            first[stem] = shown

    for r in raw:
        if r.is_file():
            try:
                with zipfile.ZipFile(r) as z:
                    members = sorted(n for n in z.namelist() if not n.endswith("/"))
            except zipfile.BadZipFile:
                raise BadFile(f"{r}: not a zip archive") from None
            for n in members:
                add(n, f"{r}{MEMBER_SEP}{n}", f"{r.name}{MEMBER_SEP}{n}")
        else:
            for p in sorted(r.rglob("*")):
                if p.is_file():
                    add(p.name, str(p), str(p.relative_to(r)))
    if out.ignored:
        out.warnings.append(f"{len(out.ignored)} files that are not NW-UCLA .json were ignored: "
                            + ", ".join(e["file"] for e in out.ignored[:5]))
    out.files = dict(sorted(out.files.items()))
    return out


_ARCHIVES: dict[tuple[str, int], zipfile.ZipFile] = {}


def read_bytes(path: str) -> bytes:
    """Bytes of a raw file: a path, or `archive.zip::member` (the archive is opened once
    per process; NTU's official zips are read the same way). Raises BadFile for a damaged
    member, OSError for an unreadable file."""
    if MEMBER_SEP not in path:
        return Path(path).read_bytes()
    archive, member = path.split(MEMBER_SEP, 1)
    member = member.lstrip("/")   # inventory.Inventory's archive paths: `a.zip::/dir/x`
    key = (archive, os.getpid())
    if key not in _ARCHIVES:
        _ARCHIVES[key] = zipfile.ZipFile(archive)
    try:
        return _ARCHIVES[key].read(member)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
        # A damaged member (bad CRC, truncated data) is that file's problem: a reported skip.
        raise BadFile(f"damaged archive member: {e}") from None


def file_name(path) -> str:
    """The raw file's own name: the last part of a path or of an archive member
    (`a.zip::dir/S001C001P001R001A001.skeleton` -> `S001C001P001R001A001.skeleton`)."""
    return str(path).split(MEMBER_SEP, 1)[-1].replace("\\", "/").rsplit("/", 1)[-1]


def stat_path(path: str) -> str:
    """The file on disk that holds `path` (the archive for a member)."""
    return path.split(MEMBER_SEP, 1)[0]


def parse_file(data: bytes, stem: str) -> tuple[np.ndarray, list[str]]:
    """One JSON file -> (joints float32 [T, 20, 3] metres, camera space; notes).

    Raises BadFile: not JSON, no `skeletons` list, not [T][20][3], no frame, a `label`
    that disagrees with the action of the name.
    """
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BadFile(f"bad JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("skeletons"), list):
        raise BadFile("bad JSON: no 'skeletons' list")
    frames = doc["skeletons"]
    if not frames:
        raise BadFile("no frames")
    for t, fr in enumerate(frames):
        if not isinstance(fr, list) or len(fr) != NUM_JOINTS:
            n = len(fr) if isinstance(fr, list) else "no"
            raise BadFile(f"wrong joint count {n} in frame {t + 1} (expected {NUM_JOINTS})")
        if any(not isinstance(j, list) or len(j) != 3 for j in fr):
            raise BadFile(f"frame {t + 1}: a joint is not [x, y, z]")
    try:
        joints = np.asarray(frames, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadFile("skeletons hold values that are not numbers") from None
    notes = []
    f = parse_name(stem)
    want = ACTIONS.index(f["action"]) + 1
    label = doc.get("label")
    if label is not None and label != want:
        raise BadFile(f"label {label} disagrees with action a{f['action']:02d} of the name "
                      f"(label {want}); the file is mislabelled")
    if doc.get("file_name") not in (None, stem):
        notes.append(f"file_name {doc['file_name']!r} differs from the file's name")
    # inf, float32 overflow and |x| > 100 m become NaN (coords.py); finalize then drops
    # those frames, like NTU's NaN frames.
    joints32, n_nan, n_bad = to_float32_finite(joints)
    notes += describe(n_nan, n_bad, unit="frames")
    if joints.shape[0] == 1:
        notes.append("1 frame: a static pose (its views repeat it)")
    return joints32, notes


def split_columns(fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """bool [N] per `<benchmark>_<split>` from the view and subject columns."""
    view = np.asarray(fields["view"])
    subject = np.asarray(fields["subject"])
    xv = np.isin(view, sorted(XVIEW_TRAIN_VIEWS))
    xs = np.isin(subject, sorted(XSUB_TRAIN_SUBJECTS))
    return {"xview_train": xv, "xview_test": ~xv, "xsub_train": xs, "xsub_test": ~xs}
