"""What each dataset is: how its raw files are found, how one raw unit (an NTU file, a
PKU video + its labels) becomes samples, its classes, its metadata fields and splits."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slim.ingest import ntu_names, pku_reader
from slim.ingest.center import finalize
from slim.ingest.denoise import assemble
from slim.ingest.ntu_reader import BadFile, parse_ntu

DATASETS = ("ntu60", "ntu120", "pku2", "synthetic")
NTU_FIELDS = ntu_names.FIELDS
PKU_FIELDS = ("video", "view", "start", "end")


@dataclass(frozen=True)
class Job:
    """One raw unit: `name` (NTU file stem or PKU video) and its paths (skeleton first)."""
    name: str
    paths: tuple[str, ...]


@dataclass
class Sample:
    """joints float32 [T, M, 25, 3] (metres, centred unless disabled)."""
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


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan(dataset: str, raw_dirs: list[Path]) -> Plan:
    """Find the raw units of `dataset` under raw_dirs (recursive)."""
    if dataset == "pku2":
        return _plan_pku(raw_dirs)
    return _plan_ntu(dataset, raw_dirs)


def _plan_ntu(dataset: str, raw_dirs: list[Path]) -> Plan:
    files, warnings = ntu_names.find_files(raw_dirs, ".skeleton")
    p = Plan(jobs=[], warnings=warnings, benchmarks=ntu_names.BENCHMARKS[dataset])
    missing = ntu_names.official_missing(dataset) if dataset in ntu_names.OFFICIAL else set()
    outside = 0
    max_action = 0
    for stem, path in files.items():
        f = ntu_names.parse_name(stem)
        if f is None:
            p.skipped.append({"file": path.name, "reason": "name is not SsssCcccPpppRrrrAaaa"})
            continue
        if dataset in ntu_names.OFFICIAL and not ntu_names.is_official_name(dataset, f):
            outside += 1
            continue
        if stem in missing:
            p.skipped.append({"file": path.name, "reason": "in the official missing-sample list"})
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
        for path in sorted(Path(d).rglob("*action*.txt")):
            names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if len(names) >= max_action:
                return names
    return [f"action {i}" for i in range(1, max_action + 1)]


def _plan_pku(raw_dirs: list[Path]) -> Plan:
    skel, labels, split_file, warnings = pku_reader.find_pku(raw_dirs)
    p = Plan(jobs=[], warnings=warnings, benchmarks=("xsub",),
             class_names=pku_reader.class_names(), num_classes=pku_reader.NUM_CLASSES)
    for video, path in skel.items():
        if video not in labels:
            p.skipped.append({"file": path.name, "reason": "no label file for this video"})
            continue
        p.jobs.append(Job(video, (str(path), str(labels[video]))))
    for video, path in labels.items():
        if video not in skel:
            p.skipped.append({"file": f"label/{path.name}", "reason": "no skeleton file for this label file"})
    if split_file is not None:
        train, test = pku_reader.read_split_file(split_file.read_text(encoding="utf-8", errors="replace"))
        p.context["split_source"] = str(split_file)
    else:
        train, test = set(), pku_reader.default_test_videos()
        p.warnings.append("cross_subject_v2.txt not found: using the 234-video X-Sub test list "
                          "shipped with the project (ingest/resources/pku2_xsub_test_videos.txt)")
        p.context["split_source"] = "ingest/resources/pku2_xsub_test_videos.txt"
    p.context["pku_test"] = sorted(test)
    p.context["pku_train"] = sorted(train)
    return p


def process(dataset: str, job: Job, center: bool, view: str = "none"
            ) -> tuple[list[Sample], dict[str, str]]:
    """Read one raw unit -> (samples, {raw file name: sha256}); `view`: see
    `center.view_rotation`. Raises BadFile."""
    if dataset == "pku2":
        return _process_pku(job, center, view)
    data = Path(job.paths[0]).read_bytes()
    hashes = {Path(job.paths[0]).name: sha256(data)}
    sk = parse_ntu(data)
    actors = assemble(sk.bodies, sk.num_frames)
    notes = sk.warnings + actors.notes
    try:
        joints = finalize(actors.joints, notes, center=center, view=view)
    except ValueError as e:
        raise BadFile(f"no valid body: {e}") from None
    f = ntu_names.parse_name(job.name)
    return [Sample(job.name, f["action"] - 1, joints, f, notes)], hashes


def _process_pku(job: Job, center: bool, view: str = "none") -> tuple[list[Sample], dict[str, str]]:
    data = Path(job.paths[0]).read_bytes()
    label_bytes = Path(job.paths[1]).read_bytes()
    hashes = {Path(job.paths[0]).name: sha256(data),
              "label/" + Path(job.paths[1]).name: sha256(label_bytes)}
    video = pku_reader.parse_pku_skeleton(data)
    notes: list[str] = []
    segments = pku_reader.parse_labels(label_bytes.decode("utf-8", errors="replace"),
                                       video.shape[0], notes)
    if not segments:
        raise BadFile("label file has no usable segment")
    out = []
    for seg in segments:
        seg_notes = list(notes)
        joints = video[seg.start - 1: seg.end]
        keep = joints.reshape(joints.shape[0], -1).sum(axis=1) != 0
        joints = joints[keep]
        sid = f"{job.name}_{seg.line:04d}"
        if joints.shape[0] == 0:
            seg_notes.append(f"{sid}: no person in frames {seg.start}-{seg.end}, skipped")
            notes.append(seg_notes[-1])
            continue
        try:
            joints = finalize(joints, seg_notes, center=center, view=view)
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
