"""Parsed chunks: the resumable half of a run. Each chunk of raw units is parsed and
denoised by a worker process and written atomically to `<out>/.work/chunk-%06d.npz`
(no pickle). A chunk file that exists is complete; a re-run skips it."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from slim.ingest.center import rotate_view
from slim.ingest.datasets import Job, process, unit_skipped
from slim.ingest.ntu_reader import BadFile
from slim.ingest.topology import get_layout


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file, read in 4 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def finished_card(out_dir: Path, fingerprint: str) -> dict | None:
    """The card of a finished ingest in `out_dir` made from the same inputs (same
    fingerprint), or None (no card, an unreadable one, or other inputs)."""
    path = Path(out_dir) / "card.json"
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text())
    except ValueError:
        return None
    return card if card.get("fingerprint") == fingerprint else None


def chunk_path(work_dir: Path, k: int) -> Path:
    return Path(work_dir) / f"chunk-{k:06d}.npz"


def process_chunk(args: tuple) -> dict:
    """Worker entry point (module level: spawn-safe). args = (k, dataset, jobs, center,
    work_dir, layout[, view]) (layout: the stored layout's name; view: see
    center.view_rotation). Writes chunk k and returns its summary {k, samples, skipped}."""
    k, dataset, jobs, center, work_dir, layout = args[:6]
    view = args[6] if len(args) > 6 else "none"
    nj = get_layout(layout).num_joints
    joints, ids, labels, frames, persons, offsets = [], [], [], [], [], [0]
    fields, notes, skipped, files = [], {}, [], {}
    label_lines, skipped_labels = 0, []
    for job in jobs:
        try:
            samples, hashes, extra = process(dataset, job, center, layout)
            for s in samples:
                s.joints = rotate_view(s.joints, view, layout)
        except (BadFile, OSError) as e:
            reason = str(e) if isinstance(e, BadFile) else f"cannot read: {e}"
            entries, lines = unit_skipped(dataset, job, reason)
            skipped += entries
            skipped_labels += lines
            label_lines += len(lines)
            continue
        files.update(hashes)
        label_lines += extra.get("label_lines", 0)
        skipped_labels += extra.get("skipped_labels", [])
        for s in samples:
            t, m = s.joints.shape[:2]
            joints.append(s.joints.reshape(t * m, nj, 3))
            offsets.append(offsets[-1] + t * m)
            ids.append(s.id)
            labels.append(s.label)
            frames.append(t)
            persons.append(m)
            fields.append(s.fields)
            if s.notes:
                notes[s.id] = s.notes
    info = {"fields": fields, "notes": notes, "skipped": skipped, "files": files,
            "label_lines": label_lines, "skipped_labels": skipped_labels}
    write_chunk(chunk_path(work_dir, k), nj, joints, offsets, ids, labels, frames, persons, info)
    return {"k": k, "samples": len(ids), "skipped": skipped}


def write_chunk(path: Path, nj: int, joints: list, offsets: list, ids: list, labels: list,
                frames: list, persons: list, info: dict) -> None:
    """Write one chunk file atomically (npz, no pickle): joints float32 [T*M, nj, 3] per
    sample, offsets [n + 1] into their rows, the per-sample lists, and `info` (JSON:
    fields, notes, skipped, files, and for PKU-MMD label_lines / skipped_labels). Also
    what the importers of preprocessed files (ingest/importer.py) write."""
    arrays = {
        "joints": np.concatenate(joints) if joints else np.zeros((0, nj, 3), np.float32),
        "offsets": np.asarray(offsets, np.int64),
        "num_frames": np.asarray(frames, np.int32),
        "num_persons": np.asarray(persons, np.int8),
        "label": np.asarray(labels, np.int16),
        "id": np.asarray(ids, dtype=np.str_) if ids else np.zeros(0, dtype="<U1"),
        "info": np.frombuffer(json.dumps(info).encode(), dtype=np.uint8),
    }
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


class Chunk:
    """A finished chunk, read back: small arrays at once, joints on demand."""

    def __init__(self, path: Path):
        self.path = path
        with np.load(path, allow_pickle=False) as z:
            self.offsets = z["offsets"]
            self.num_frames = z["num_frames"]
            self.num_persons = z["num_persons"]
            self.label = z["label"]
            self.ids = [str(s) for s in z["id"]]
            self.info = json.loads(z["info"].tobytes().decode())

    def joints(self) -> np.ndarray:
        """float32 [R, V, 3], the chunk's rows (sample i: offsets[i]:offsets[i+1])."""
        with np.load(self.path, allow_pickle=False) as z:
            return z["joints"]


def chunk_jobs(jobs: list[Job], max_per_chunk: int = 64) -> list[list[Job]]:
    """Split jobs (in name order) into chunks of at most `max_per_chunk`, and at least 16
    chunks when there are enough jobs, so small runs still spread over the workers. The
    split depends on the jobs only (not on --workers), so a resumed run finds its chunks."""
    if not jobs:
        return []
    size = max(1, min(max_per_chunk, -(-len(jobs) // 16)))
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]
