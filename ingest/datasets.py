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
    """One raw unit: `name` (NTU file stem or PKU video) and its paths (skeleton first)."""
    name: str
    paths: tuple[str, ...]


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
    """Everything found under the raw folders, before any file is read."""
    jobs: list[Job]
    skipped: list[dict] = field(default_factory=list)   # [{file, reason}]
    warnings: list[str] = field(default_factory=list)
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    benchmarks: tuple[str, ...] = ()
    context: dict = field(default_factory=dict)          # picklable, given to workers
    layout: str = "ntu25"                                # stored layout (registered name)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan(dataset: str, raw_dirs: list[Path], layout: str | None = None) -> Plan:
    """Find the raw units of `dataset` under raw_dirs (recursive; for nwucla also zip
    archives). layout: the stored layout (None: the dataset's native one)."""
    if dataset == "pku2":
        p = _plan_pku(raw_dirs)
    elif dataset == "nwucla":
        p = _plan_nwucla(raw_dirs)
    else:
        p = _plan_ntu(dataset, raw_dirs)
    p.layout = resolve_layout(dataset, layout)
    return p


def _plan_nwucla(raw: list[Path]) -> Plan:
    files, skipped, warnings = nwucla.find_files(raw)
    p = Plan(jobs=[Job(stem, (path,)) for stem, path in files.items()], skipped=skipped,
             warnings=warnings, benchmarks=nwucla.BENCHMARKS,
             class_names=list(nwucla.CLASS_NAMES), num_classes=len(nwucla.CLASS_NAMES))
    return p


def _plan_ntu(dataset: str, raw_dirs: list[Path]) -> Plan:
    try:
        files, warnings = ntu_names.find_files(raw_dirs, ".skeleton")
    except ValueError as e:
        raise BadFile(str(e)) from None
    p = Plan(jobs=[], warnings=warnings, benchmarks=ntu_names.BENCHMARKS[dataset])
    missing = ntu_names.official_missing(dataset) if dataset in ntu_names.OFFICIAL else set()
    outside = 0
    max_action = 0
    for stem, path in files.items():
        f = ntu_names.parse_name(stem)
        if f is None:
            p.skipped.append({"file": nwucla.file_name(path), "reason": "name is not SsssCcccPpppRrrrAaaa"})
            continue
        if dataset in ntu_names.OFFICIAL and not ntu_names.is_official_name(dataset, f):
            outside += 1
            continue
        if stem in missing:
            p.skipped.append({"file": nwucla.file_name(path), "reason": "in the official missing-sample list"})
            continue
        max_action = max(max_action, f["action"])
        p.jobs.append(Job(stem, (str(path),)))
    if outside:
        p.warnings.append(f"{outside} files outside {dataset}'s setups/actions were not read")
    if dataset in ntu_names.OFFICIAL:
        p.class_names = ntu_names.class_names(dataset)
    else:
        p.class_names = _synthetic_names(raw_dirs, max_action)
    p.num_classes = len(p.class_names)
    return p


def _synthetic_names(raw_dirs: list[Path], max_action: int) -> list[str]:
    """Class names from an actions list (`*action*.txt`, one name a line, line i = action
    A(i)) when the generator wrote one, else `action N` up to the largest action seen."""
    for d in raw_dirs:
        if Path(d).is_file():  # an archive: its *action*.txt members
            import zipfile
            with zipfile.ZipFile(d) as z:
                found = [f"{d}{nwucla.MEMBER_SEP}{n}" for n in sorted(z.namelist())
                         if "action" in nwucla.file_name(n) and n.endswith(".txt")]
        else:
            found = [str(p) for p in sorted(Path(d).rglob("*action*.txt"))]
        for path in found:
            text = nwucla.read_bytes(path).decode("utf-8")
            names = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if len(names) >= max_action:
                return names
    return [f"action {i}" for i in range(1, max_action + 1)]


def _plan_pku(raw_dirs: list[Path]) -> Plan:
    try:
        skel, labels, split_file, warnings = pku_reader.find_pku(raw_dirs)
    except ValueError as e:
        raise BadFile(str(e)) from None
    p = Plan(jobs=[], warnings=warnings, benchmarks=("xsub",),
             class_names=pku_reader.class_names(), num_classes=pku_reader.NUM_CLASSES)
    for video, path in skel.items():
        if video not in labels:
            p.skipped.append({"file": nwucla.file_name(path), "reason": "no label file for this video"})
            continue
        p.jobs.append(Job(video, (str(path), str(labels[video]))))
    for video, path in labels.items():
        if video not in skel:
            p.skipped.append({"file": f"label/{nwucla.file_name(path)}", "reason": "no skeleton file for this label file"})
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


def process(dataset: str, job: Job, center: bool, layout: str | None = None
            ) -> tuple[list[Sample], dict[str, str]]:
    """Read one raw unit -> (samples, {raw file name: sha256}); joints are stored in
    `layout` (None: native; else mapped by topology.MAPPINGS). Raises BadFile."""
    if dataset == "pku2":
        return _process_pku(job, center)
    if dataset == "nwucla":
        return _process_nwucla(job, center, layout)
    data = nwucla.read_bytes(job.paths[0])
    hashes = {nwucla.file_name(job.paths[0]): sha256(data)}
    joints, notes = ntu_sample_joints(data, center)
    f = ntu_names.parse_name(job.name)
    return [Sample(job.name, f["action"] - 1, joints, f, notes)], hashes


def _process_nwucla(job: Job, center: bool, layout: str | None) -> tuple[list[Sample], dict[str, str]]:
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
                   joints, nwucla.parse_name(job.name), notes)], hashes


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


def _process_pku(job: Job, center: bool) -> tuple[list[Sample], dict[str, str]]:
    data = nwucla.read_bytes(job.paths[0])
    label_bytes = nwucla.read_bytes(job.paths[1])
    hashes = {nwucla.file_name(job.paths[0]): sha256(data),
              "label/" + nwucla.file_name(job.paths[1]): sha256(label_bytes)}
    video = pku_reader.parse_pku_skeleton(data)
    notes: list[str] = []
    segments = pku_reader.parse_labels(label_bytes.decode("utf-8", errors="replace"),
                                       video.shape[0], notes)
    if not segments:
        raise BadFile("label file has no usable segment")
    out = []
    for seg in segments:
        seg_notes = list(notes)
        sid = f"{job.name}_{seg.line:04d}"
        try:
            joints = pku_segment_joints(video, seg.start, seg.end, seg_notes, center)
        except ValueError as e:
            notes.append(f"{sid}: {e}, skipped")
            continue
        fields = {"video": job.name, "view": job.name[-1], "start": seg.start, "end": seg.end}
        out.append(Sample(sid, seg.label, joints, fields, seg_notes))
    if not out:
        raise BadFile("no segment with a person in it")
    return out, hashes


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
