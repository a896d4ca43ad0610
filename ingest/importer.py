"""Import a preprocessed NTU file (pyskl pickle, CTR-GCN npz, ST-GCN npy) into the same
`data/<dataset>/` as raw ingest: each source reader (ingest/from_*.py) yields entries;
this module checks them, removes padding and absent or duplicated second actors,
applies our normalization where the source lacks it, and hands chunks to the raw
ingest's writer (work.write_chunk -> assemble.assemble_outputs).

Accounting (card.json `source`): entries seen = samples written + skipped entries, each
skip {file: sample name (or `<source>#<index>`), reason}.

Interruption: an import that is stopped (even SIGKILL) leaves no card.json (the old one is
removed before any output changes, and the new one is written last, atomically), so
nothing vouches for half-written outputs; the same command restarts the import from the
source (chunks are not resumed: reading the source again is most of the work) and ends
with the same outputs, byte for byte (tests/test_ingest_import_resume.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from slim.ingest import ntu_names
from slim.ingest.center import NORMALIZATION, finalize
from slim.ingest.datasets import Plan
from slim.ingest.safe_load import UnsafeSource
from slim.ingest.versions import INGEST_VERSION
from slim.ingest.work import chunk_path, file_sha256, finished_card, write_chunk

FORMATS = ("pyskl", "ctrgcn", "stgcn")
#: Coordinates beyond this (metres) are not a person in front of a Kinect: treated like
#: NaN (the frame is dropped), as raw ingest does with non-finite values.
MAX_ABS_M = 100.0
CHUNK_SAMPLES = 256
#: Fault injection for the interruption tests: `$SLIM_IMPORT_KILL_AT` = `chunk:K` (SIGKILL
#: this process right after chunk K of `.work/` is written) or `write:K` (after K chunks went
#: into samples.h5.tmp and the shards); `POINT=SIGTERM` (or another signal name) sends that
#: signal instead. Unset in normal use.
KILL_AT_ENV = "SLIM_IMPORT_KILL_AT"


def _fault_point(point: str) -> None:
    want, _, sig = os.environ.get(KILL_AT_ENV, "").partition("=")
    if want == point:
        os.kill(os.getpid(), signal.Signals[sig] if sig else signal.SIGKILL)


class SourceError(Exception):
    """The source as a whole cannot be imported (wrong keys, wrong shapes, unsafe or
    truncated file): the message names the file and what is wrong."""


@dataclass
class Entry:
    """One sample as a source stores it. slots float32 [T, S, 25, 3] (S = 1 or 2, padding
    still in), name the NTU name (None when the source has none), label 0-based,
    splits {benchmark_split column: bool} as the file assigns it."""
    key: str
    name: str | None
    label: int
    slots: np.ndarray
    splits: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


@dataclass
class Skip:
    """An entry that cannot become a sample: key names it, reason says why."""
    key: str
    reason: str


@dataclass
class Source:
    """What a reader found: entries (an iterator; may be long), the source's
    preprocessing, and whether our centring must still be applied."""
    entries: Iterator
    preprocessing: str
    centred: bool
    benchmarks: tuple[str, ...]
    named: bool = True
    warnings: list = field(default_factory=list)
    info: dict = field(default_factory=dict)


def trim_padding(slots: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """slots [T, S, V, 3] -> (slots without trailing all-zero frames (the zero padding of
    fixed-length formats), notes). Frames inside the sequence are kept as they are."""
    nonzero = np.flatnonzero((slots != 0).any(axis=(1, 2, 3)))
    notes = []
    if nonzero.size == 0:
        return slots[:0], notes
    end = int(nonzero[-1]) + 1
    return slots[:end], notes


def drop_copy_actor(slots: np.ndarray, notes: list[str]) -> np.ndarray:
    """slots [T, 2, V, 3] -> [T, 1, V, 3] when slot 2 repeats slot 1 exactly in every
    frame (a single actor duplicated into the second slot); else unchanged. An all-zero
    slot 2 is left to `center.finalize`, which drops it."""
    if slots.shape[1] == 2 and (slots[:, 1] != 0).any() and np.array_equal(slots[:, 0], slots[:, 1]):
        notes.append("second actor slot duplicates the first: stored as one person")
        return slots[:, :1]
    return slots


def clean_values(slots: np.ndarray, notes: list[str]) -> np.ndarray:
    """Non-finite values and |x| > MAX_ABS_M become NaN (so `finalize` drops their
    frames, as raw ingest does). Returns float32 (a copy)."""
    x = np.array(slots, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(x) | (np.abs(x) > MAX_ABS_M)
    if bad.any():
        notes.append(f"{int(bad.any(axis=(1, 2, 3)).sum())} frames with non-finite or "
                     f"|x| > {MAX_ABS_M:g} m values")
        x[bad] = np.nan
    return x


def check_name(dataset: str, name: str, label: int) -> str | None:
    """None when `name` is an NTU name inside `dataset` whose action is label + 1; else
    the reason to skip the entry."""
    f = ntu_names.parse_name(name)
    if f is None:
        return "name is not SsssCcccPpppRrrrAaaa"
    if not ntu_names.is_official_name(dataset, f):
        return f"name lies outside {dataset}'s setups/actions"
    if f["action"] - 1 != label:
        return f"label {label} (0-based) disagrees with action A{f['action']:03d} of the name"
    return None


def _reader(fmt: str):
    if fmt == "pyskl":
        from slim.ingest import from_pyskl as m
    elif fmt == "ctrgcn":
        from slim.ingest import from_ctrgcn as m
    elif fmt == "stgcn":
        from slim.ingest import from_stgcn as m
    else:
        raise SourceError(f"--from {fmt}: unknown format; one of {', '.join(FORMATS)}")
    return m


def run_import(dataset: str, fmt: str, sources: list[str], out: str = "data", *,
               center: bool = True, shard_size_mb: float = 64.0, names_file: str | None = None,
               log: Callable[[str], None] = print, shard_encoding: str = "f32") -> tuple[Path, dict]:
    """Import `sources` (files or a folder, per format) of `fmt` as `dataset` (ntu60 /
    ntu120) into `out/<dataset>/`. Returns (folder, card).

    Raises SourceError (wrong path, keys, shapes; unsafe, truncated or empty source).
    Entries that cannot be samples are skipped and listed in card.json with reasons.
    """
    if dataset not in ntu_names.OFFICIAL:
        raise SourceError(f"--from works for ntu60 and ntu120, not {dataset}")
    reader = _reader(fmt)
    paths = [Path(s) for s in sources]
    if not paths:
        raise SourceError(f"--from {fmt}: no source file given")
    for p in paths:
        if not p.exists():
            raise SourceError(f"{p}: no such file or folder")
    files = [p for p in paths if p.is_file()] + [q for p in paths if p.is_dir()
                                                 for q in sorted(p.iterdir()) if q.is_file()]
    if names_file:
        files.append(Path(names_file))
    hashes = {str(p): file_sha256(p) for p in files}
    fp = hashlib.sha256(json.dumps([fmt, dataset, center, INGEST_VERSION, sorted(hashes.values())]
                                   + ([shard_encoding] if shard_encoding != "f32" else [])
                                   ).encode()).hexdigest()
    card = finished_card(Path(out) / dataset, fp)
    if card is not None:
        shutil.rmtree(Path(out) / dataset / ".work", ignore_errors=True)
        log(f"{Path(out) / dataset}: already complete for these inputs ({card['num_samples']} samples)")
        return Path(out) / dataset, card
    try:
        src = reader.read(dataset, paths, names_file=names_file)
    except UnsafeSource as e:
        raise SourceError(str(e)) from None
    return _write(dataset, fmt, paths, src, out, center, shard_size_mb, log, hashes, fp, shard_encoding)


def _write(dataset, fmt, paths, src: Source, out, center, shard_size_mb, log, hashes, fp,
           shard_encoding="f32"):
    from slim.ingest.assemble import assemble_outputs
    out_dir = Path(out) / dataset
    work = out_dir / ".work"
    # The outputs are about to change: no card may vouch for them until the new one is
    # written (a stale card of other inputs would make their command say "complete").
    (out_dir / "card.json").unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    n_cls = ntu_names.OFFICIAL[dataset][1]
    skipped: list[dict] = []
    seen = set()
    chunk_paths = []
    buf = _Buffer()
    file_splits = {f"{b}_{s}": [] for b in src.benchmarks for s in ("train", "test")}
    disagree: dict[str, list[str]] = {}
    n_seen = 0
    apply_center = center and not src.centred
    try:
        for e in src.entries:
            n_seen += 1
            if isinstance(e, Skip):
                skipped.append({"file": e.key, "reason": e.reason})
                continue
            if not (0 <= e.label < n_cls):
                skipped.append({"file": e.key, "reason": f"label {e.label} out of range 0-{n_cls - 1}"})
                continue
            if e.name is not None:
                why = check_name(dataset, e.name, e.label)
                if why is None and e.name in seen:
                    why = "the same name appears twice in the source; the first was kept"
                if why is not None:
                    skipped.append({"file": e.key, "reason": why})
                    continue
            notes = list(e.notes)
            slots = clean_values(e.slots, notes)
            slots, _ = trim_padding(slots)  # NaN counts as nonzero: not padding
            if slots.shape[0] == 0:
                skipped.append({"file": e.key, "reason": "every frame is zero (padding only)"})
                continue
            slots = drop_copy_actor(slots, notes)
            try:
                joints = finalize(slots, notes, center=apply_center)
            except ValueError as err:
                skipped.append({"file": e.key, "reason": f"no valid frame: {err}"})
                continue
            sid = e.name if e.name is not None else e.key
            seen.add(sid)
            if e.name is not None:
                fields = ntu_names.parse_name(e.name)
                official = ntu_names.split_columns(
                    dataset, np.array([fields["setup"]]), np.array([fields["camera"]]),
                    np.array([fields["performer"]]))
                for col, v in e.splits.items():
                    if col in official and bool(official[col][0]) != bool(v):
                        disagree.setdefault(col, []).append(e.name)
            else:
                fields = {}
                for col in file_splits:
                    file_splits[col].append(bool(e.splits.get(col, False)))
            buf.add(sid, e.label, joints, fields, notes)
            if len(buf) >= CHUNK_SAMPLES:
                chunk_paths.append(buf.flush(chunk_path(work, len(chunk_paths))))
                _fault_point(f"chunk:{len(chunk_paths)}")
    except UnsafeSource as err:
        raise SourceError(str(err)) from None
    if len(buf) or not chunk_paths:
        chunk_paths.append(buf.flush(chunk_path(work, len(chunk_paths))))
    n_written = n_seen - len(skipped)
    if n_written == 0:
        shutil.rmtree(work, ignore_errors=True)
        raise SourceError(f"{', '.join(map(str, paths))}: no entry could be imported "
                          f"({len(skipped)} skipped; first: {skipped[:1]})")
    warnings = list(src.warnings)
    for col, names in sorted(disagree.items()):
        warnings.append(f"split {col}: {len(names)} samples the file assigns differently from the "
                        f"official rule (the official rule is used): {', '.join(names[:5])}")
    plan = Plan(jobs=[], skipped=[], warnings=warnings, benchmarks=src.benchmarks,
                class_names=ntu_names.class_names(dataset), num_classes=n_cls, layout="ntu25")
    plan.files_seen = len(hashes)     # the source files; their entries are accounted in `source`
    if not src.named:
        plan.context["file_splits"] = file_splits
    normalization = NORMALIZATION if (src.centred or center) else "none (raw camera coordinates, metres)"
    source = {
        "format": fmt, "files": [{"path": p, "sha256": h, "bytes": os.path.getsize(p)}
                                 for p, h in hashes.items()],
        "preprocessing_applied_by_source": src.preprocessing,
        "normalization_applied_here": (NORMALIZATION if apply_center else
                                       "none: " + ("the source is already centred by the same rule"
                                                   if src.centred else "--no-center")),
        "names": "from the file" if src.named else "none (see warnings)",
        "entries_seen": n_seen, "samples_written": n_written, "entries_skipped": len(skipped),
        "split_disagreements": {k: len(v) for k, v in disagree.items()},
        **src.info,
    }
    config = {"dataset": dataset, "from": fmt, "sources": [str(p) for p in paths], "out": str(out),
              "center": center, "shard_size_mb": shard_size_mb, "shard_encoding": shard_encoding}
    # Per-entry skips go into the card's skipped list through the first chunk's info.
    first = chunk_paths[0]
    _add_skips(first, skipped, {Path(p).name: h for p, h in hashes.items()})
    written = iter(range(1, len(chunk_paths) + 1))
    card = assemble_outputs(out_dir, dataset, chunk_paths, plan, normalization=normalization,
                            shard_size_mb=shard_size_mb, config=config, fingerprint=fp,
                            extra={"source": source}, shard_encoding=shard_encoding,
                            on_chunk=lambda n: _fault_point(f"write:{next(written)}"))
    shutil.rmtree(work, ignore_errors=True)
    for s in skipped[:20]:
        log(f"skipped {s['file']}: {s['reason']}")
    if len(skipped) > 20:
        log(f"... and {len(skipped) - 20} more skipped entries (card.json)")
    for w in card["warnings"]:
        log(f"warning: {w}")
    return out_dir, card


def _add_skips(path: Path, skipped: list[dict], files: dict) -> None:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    info = json.loads(arrays["info"].tobytes().decode())
    info["skipped"] = info["skipped"] + skipped
    info["files"] = {**info["files"], **files}
    arrays["info"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


class _Buffer:
    """Samples waiting to be written as one chunk."""

    def __init__(self):
        self._reset()

    def _reset(self):
        self.joints, self.offsets, self.ids, self.labels = [], [0], [], []
        self.frames, self.persons, self.fields, self.notes = [], [], [], {}

    def __len__(self):
        return len(self.ids)

    def add(self, sid, label, joints, fields, notes):
        t, m = joints.shape[:2]
        self.joints.append(joints.reshape(t * m, 25, 3))
        self.offsets.append(self.offsets[-1] + t * m)
        self.ids.append(sid)
        self.labels.append(label)
        self.frames.append(t)
        self.persons.append(m)
        self.fields.append(fields)
        if notes:
            self.notes[sid] = notes

    def flush(self, path: Path) -> Path:
        write_chunk(path, 25, self.joints, self.offsets, self.ids, self.labels, self.frames,
                    self.persons, {"fields": self.fields, "notes": self.notes, "skipped": [],
                                   "files": {}})
        self._reset()
        return path
