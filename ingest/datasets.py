"""What each dataset is: how its raw files are found, how one raw unit (an NTU file, a
PKU video + its labels) becomes samples, its classes, its metadata fields and splits."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slim.ingest import ntu_names, nwucla, pku_reader
from slim.ingest.center import finalize
from slim.ingest.denoise import assemble
from slim.ingest.inventory import Inventory, has_ext, strip_ext
from slim.ingest.ntu_reader import BadFile, parse_ntu
from slim.ingest.topology import canonical_name, get_layout, get_mapping

DATASETS = ("ntu60", "ntu120", "pku2", "synthetic", "nwucla")
NTU_FIELDS = ntu_names.FIELDS
PKU_FIELDS = ("video", "view", "start", "end")
#: The layout each dataset's raw files are recorded in.
NATIVE_LAYOUT = {"ntu60": "ntu25", "ntu120": "ntu25", "pku2": "ntu25", "synthetic": "ntu25",
                 "nwucla": nwucla.NATIVE_LAYOUT}
#: Datasets whose --raw may be a zip archive instead of a folder.
ARCHIVE_OK = frozenset({"nwucla", "ntu60", "ntu120", "synthetic", "pku2"})


def fields_of(dataset: str) -> tuple[str, ...]:
    """The manifest's dataset-specific columns."""
    return {"pku2": PKU_FIELDS, "nwucla": nwucla.FIELDS}.get(dataset, NTU_FIELDS)


def resolve_layout(dataset: str, layout: str | None) -> str:
    """The layout name the samples are stored in: the dataset's native one (None), or
    a target reachable by a registered mapping. Raises KeyError naming what exists."""
    native = NATIVE_LAYOUT[dataset]
    if layout is None or canonical_name(layout) == native:
        return native
    get_layout(layout)
    get_mapping(native, layout)
    return canonical_name(layout)


@dataclass(frozen=True)
class Job:
    """One raw unit: `name` (NTU file stem or PKU video), its paths (skeleton first) and
    the same paths as shown in the card (relative to their --raw root)."""
    name: str
    paths: tuple[str, ...]
    shown: tuple[str, ...] = ()


@dataclass
class Sample:
    """joints float32 [T, M, V, 3] (metres, centred unless disabled; V of the stored
    layout)."""
    id: str
    label: int
    joints: np.ndarray
    fields: dict
    notes: list[str]


@dataclass
class Plan:
    """Everything found under the raw folders, before any file is read. Every file seen
    is in a job, in `skipped` or in `ignored` (see inventory.py for the card's rule)."""
    jobs: list[Job]
    skipped: list[dict] = field(default_factory=list)   # [{file, path, reason}]
    warnings: list[str] = field(default_factory=list)
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    benchmarks: tuple[str, ...] = ()
    context: dict = field(default_factory=dict)          # picklable, given to workers
    layout: str = "ntu25"                                # stored layout (registered name)
    ignored: list[dict] = field(default_factory=list)   # [{file, path, reason}]
    files_seen: int = 0
    seen: list[str] = field(default_factory=list)        # every file seen (for the fingerprint)
    label_lines: int = 0                                 # PKU: lines of label files not in a job
    skipped_labels: list[dict] = field(default_factory=list)  # PKU: [{video, line, reason}]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan(dataset: str, raw_dirs: list[Path], layout: str | None = None) -> Plan:
    """Find the raw units of `dataset` under raw_dirs (folders, recursively, or zip
    archives as downloaded, read in place); every other file is skipped or ignored with a reason. layout: the stored
    layout (None: the dataset's native one)."""
    if dataset == "nwucla":
        p = _plan_nwucla(raw_dirs)
    else:
        try:
            inv = Inventory(raw_dirs)
        except ValueError as e:       # a .zip that is not an archive
            raise BadFile(str(e)) from None
        p = _plan_pku(inv) if dataset == "pku2" else _plan_ntu(dataset, inv)
        p.ignored = inv.ignored("PKU-MMD AxxNyy-V.txt" if dataset == "pku2" else ".skeleton")
        p.files_seen = len(inv)
        p.seen = [str(f) for f in inv.files]
    p.layout = resolve_layout(dataset, layout)
    return p


def _plan_nwucla(raw: list[Path]) -> Plan:
    found = nwucla.find_files(raw)
    p = Plan(jobs=[Job(stem, (path,), (shown,)) for stem, (path, shown) in found.files.items()],
             skipped=found.skipped, ignored=found.ignored, warnings=found.warnings,
             benchmarks=nwucla.BENCHMARKS,
             class_names=list(nwucla.CLASS_NAMES), num_classes=len(nwucla.CLASS_NAMES))
    p.files_seen = len(found.seen)
    p.seen = found.seen
    return p


def _job(inv: Inventory, name: str, *paths: Path) -> Job:
    return Job(name, tuple(str(x) for x in paths), tuple(inv.entry(x, "")["path"] for x in paths))


def _plan_ntu(dataset: str, inv: Inventory) -> Plan:
    p = Plan(jobs=[], benchmarks=ntu_names.BENCHMARKS[dataset])
    missing = ntu_names.official_missing(dataset) if dataset in ntu_names.OFFICIAL else set()
    outside = 0
    max_action = 0
    found: dict[str, Path] = {}
    for path in inv.take(".skeleton"):
        stem = strip_ext(path.name, ".skeleton")
        if stem in found:
            p.skipped.append(inv.entry(path, f"a second file for {stem} (the first, "
                                             f"{inv.entry(found[stem], '')['path']}, is read)"))
            continue
        found[stem] = path
    for stem, path in sorted(found.items()):
        f = ntu_names.parse_name(stem)
        if f is None:
            copy = ntu_names.NAME_RE.match(stem)
            p.skipped.append(inv.entry(path, (
                f"a copy of {copy.group(0)} (name has {stem[copy.end():]!r} after the sample name); "
                "rename it if it is a different recording" if copy else
                "name is not SsssCcccPpppRrrrAaaa")))
            continue
        if dataset in ntu_names.OFFICIAL and not ntu_names.is_official_name(dataset, f):
            outside += 1
            setups, actions = ntu_names.OFFICIAL[dataset]
            p.skipped.append(inv.entry(path, f"outside {dataset} (setups S001-S{setups:03d}, actions "
                                             f"A001-A{actions:03d}, cameras C001-C003)"))
            continue
        if stem in missing:
            p.skipped.append(inv.entry(path, "in the official missing-sample list"))
            continue
        max_action = max(max_action, f["action"])
        p.jobs.append(_job(inv, stem, path))
    if outside:
        p.warnings.append(f"{outside} files outside {dataset}'s setups/actions were not read"
                          + (" (use `slim-ingest ntu120` for S018-S032 / A061-A120)" if dataset == "ntu60" else ""))
    if dataset in ntu_names.OFFICIAL:
        p.class_names = ntu_names.class_names(dataset)
    else:
        p.class_names = _synthetic_names(inv, max_action)
    p.num_classes = len(p.class_names)
    return p


def _synthetic_names(inv: Inventory, max_action: int) -> list[str]:
    """Class names from an actions list (`*action*.txt`, one name a line, line i = action
    A(i)) when the generator wrote one, else `action N` up to the largest action seen."""
    for path in inv.files:
        if has_ext(path.name, ".txt") and "action" in path.name.lower():
            text = nwucla.read_bytes(str(path)).decode("utf-8", errors="replace")
            names = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if len(names) >= max_action:
                inv.note(path, "the class-name list (line i = action A(i)), read for the class names; "
                               "not a sample")
                return names
    return [f"action {i}" for i in range(1, max_action + 1)]


def _plan_pku(inv: Inventory) -> Plan:
    skel, labels, split_file, dupes = pku_reader.find_pku(inv)
    p = Plan(jobs=[], benchmarks=("xsub",),
             class_names=pku_reader.class_names(), num_classes=pku_reader.NUM_CLASSES)
    for path, first in dupes:
        p.skipped.append(inv.entry(path, f"a second file for {strip_ext(path.name, '.txt')} (the first, "
                                         f"{inv.entry(first, '')['path']}, is read)"))
    for video, path in skel.items():
        if video not in labels:
            p.skipped.append(inv.entry(path, "no label file for this video"))
            continue
        p.jobs.append(_job(inv, video, path, labels[video]))
    for video, path in labels.items():
        if video not in skel:
            entries, lines = unit_skipped("pku2", _job(inv, video, path, path),
                                          "no skeleton file for this label file")
            p.skipped.append(entries[0])
            p.skipped_labels += lines
            p.label_lines += len(lines)
    if split_file is not None:
        train, test = pku_reader.read_split_file(
            nwucla.read_bytes(str(split_file)).decode("utf-8", errors="replace"))
        p.context["split_source"] = str(split_file)
    else:
        train, test = set(), pku_reader.default_test_videos()
        p.warnings.append("cross_subject_v2.txt not found: using the 234-video X-Sub test list "
                          "shipped with the project (ingest/resources/pku2_xsub_test_videos.txt)")
        p.context["split_source"] = "ingest/resources/pku2_xsub_test_videos.txt"
    p.context["pku_test"] = sorted(test)
    p.context["pku_train"] = sorted(train)
    return p


def unit_skipped(dataset: str, job: Job, reason: str) -> tuple[list[dict], list[dict]]:
    """Card entries for a raw unit that gives no sample: one per file ({file, path,
    reason}) and, for PKU-MMD, one per label line ({video, line, reason})."""
    shown = job.shown or job.paths
    files = [{"file": Path(job.paths[0]).name, "path": shown[0], "reason": reason}]
    for path, rel in zip(job.paths[1:], shown[1:]):
        files.append({"file": Path(path).name, "path": rel,
                      "reason": f"its video {job.name} was skipped: {reason}"})
    lines = []
    if dataset == "pku2":
        try:
            text = nwucla.read_bytes(job.paths[-1]).decode("utf-8", errors="replace")
        except (OSError, BadFile):
            text = ""
        lines = [{"video": job.name, "line": i, "reason": reason}
                 for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    return files, lines


def process(dataset: str, job: Job, center: bool, layout: str | None = None
            ) -> tuple[list[Sample], dict[str, str], dict]:
    """Read one raw unit -> (samples, {raw file name: sha256}, accounting extras: for
    PKU-MMD {label_lines, skipped_labels}); joints are stored in `layout` (None: native;
    else mapped by topology.MAPPINGS). Raises BadFile."""
    if dataset == "pku2":
        return _process_pku(job, center)
    if dataset == "nwucla":
        return _process_nwucla(job, center, layout)
    data = nwucla.read_bytes(job.paths[0])
    hashes = {nwucla.file_name(job.paths[0]): sha256(data)}
    joints, notes = ntu_sample_joints(data, center)
    f = ntu_names.parse_name(job.name)
    return [Sample(job.name, f["action"] - 1, joints, f, notes)], hashes, {}


def _process_nwucla(job: Job, center: bool, layout: str | None) -> tuple[list[Sample], dict[str, str], dict]:
    data = nwucla.read_bytes(job.paths[0])
    hashes = {nwucla.file_name(job.paths[0]): sha256(data)}
    joints, notes = nwucla.parse_file(data, job.name)
    try:
        joints = finalize(joints[:, None], notes, center=center,
                          center_joint=get_layout(nwucla.NATIVE_LAYOUT).center_joint)
    except ValueError as e:
        raise BadFile(f"no valid frame: {e}") from None
    target = resolve_layout("nwucla", layout)
    if target != nwucla.NATIVE_LAYOUT:
        joints = get_mapping(nwucla.NATIVE_LAYOUT, target).apply(joints)
    return [Sample(job.name, nwucla.ACTIONS.index(nwucla.parse_name(job.name)["action"]),
                   joints, nwucla.parse_name(job.name), notes)], hashes, {}


def ntu_actor_slots(data: bytes) -> tuple[np.ndarray, list[str]]:
    """Bytes of one `.skeleton` file -> (actor slots float32 [T, S, 25, 3] after
    denoising and two-actor assembly, notes). Raises BadFile."""
    sk = parse_ntu(data)
    actors = assemble(sk.bodies, sk.num_frames)
    return actors.joints, sk.warnings + actors.notes


def ntu_sample_joints(data: bytes, center: bool = True) -> tuple[np.ndarray, list[str]]:
    """The whole ingest preprocessing of one NTU file (parse, denoise, two-actor assembly,
    NaN-frame removal, centring): bytes -> (joints float32 [T, M, 25, 3], notes). Also
    what `slim-eval predict` runs on a raw file. Raises BadFile."""
    slots, notes = ntu_actor_slots(data)
    try:
        joints = finalize(slots, notes, center=center)
    except ValueError as e:
        raise BadFile(f"no valid body: {e}") from None
    return joints, notes


def pku_segment_joints(video: np.ndarray, start: int, end: int, notes: list[str],
                       center: bool = True) -> np.ndarray:
    """Frames start..end (1-based, inclusive) of a PKU-MMD video [F, 2, 25, 3] as a stored
    sample: frames without anyone dropped, then `finalize` (centring). Returns float32
    [T, M, 25, 3]; raises ValueError when no frame has a person in it."""
    joints = video[start - 1: end]
    joints = joints[joints.reshape(joints.shape[0], -1).sum(axis=1) != 0]
    if joints.shape[0] == 0:
        raise ValueError(f"no person in frames {start}-{end}")
    return finalize(joints, notes, center=center)


def _process_pku(job: Job, center: bool) -> tuple[list[Sample], dict[str, str], dict]:
    data = nwucla.read_bytes(job.paths[0])
    label_bytes = nwucla.read_bytes(job.paths[1])
    hashes = {nwucla.file_name(job.paths[0]): sha256(data),
              "label/" + nwucla.file_name(job.paths[1]): sha256(label_bytes)}
    video = pku_reader.parse_pku_skeleton(data)
    notes: list[str] = []
    dropped: list[tuple[int, str]] = []
    text = label_bytes.decode("utf-8", errors="replace")
    segments = pku_reader.parse_labels(text, video.shape[0], notes, dropped)
    if not segments:
        raise BadFile("label file has no usable segment")
    out = []
    for seg in segments:
        seg_notes = list(notes)
        sid = f"{job.name}_{seg.line:04d}"
        try:
            joints = pku_segment_joints(video, seg.start, seg.end, seg_notes, center)
        except ValueError as e:
            dropped.append((seg.line, str(e)))
            continue
        fields = {"video": job.name, "view": job.name[-1], "start": seg.start, "end": seg.end}
        out.append(Sample(sid, seg.label, joints, fields, seg_notes))
    if not out:
        raise BadFile("no segment with a person in it")
    extra = {"label_lines": pku_reader.count_label_lines(text),
             "skipped_labels": [{"video": job.name, "line": i, "reason": why} for i, why in sorted(dropped)]}
    return out, hashes, extra


def split_columns(dataset: str, fields: dict[str, np.ndarray], context: dict,
                  warnings: list[str]) -> dict[str, np.ndarray]:
    """bool [N] per `<benchmark>_<split>` from the manifest's field columns."""
    if dataset == "nwucla":
        return nwucla.split_columns(fields)
    if dataset != "pku2":
        return ntu_names.split_columns(dataset, fields["setup"], fields["camera"],
                                       fields["performer"])
    video = np.asarray(fields["video"], dtype=object)
    test = np.isin(video, context["pku_test"])
    train_list = set(context["pku_train"])
    if train_list:
        unknown = sorted({v for v in video if v not in train_list and v not in set(context["pku_test"])})
        if unknown:
            warnings.append(f"{len(unknown)} videos in neither list of the split file "
                            f"(put in training): {unknown[:5]}")
    return {"xsub_train": ~test, "xsub_test": test}
