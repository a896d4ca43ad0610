"""Sliding-window scores of a long recording -> action segments, and the PKU-MMD label-file
format they are written in (`label,start,end,confidence` a line, label 1-based, frames
1-based inclusive: the format of the dataset's label files, pku_reader.parse_labels, which
the PKU-MMD detection scorers read for predictions too, the 4th column as the score).

Merging: every frame gets the mean class probabilities of the windows covering it; its
label is their argmax; runs of frames with one label become segments, scored by the mean
probability of that label over the run; runs shorter than `min_len` frames or scored
below `min_score` are dropped, and frames no scored window covers (nobody in view) end a
run."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Segment:
    """label 0-based; start/end 1-based inclusive frames; score in [0, 1]."""
    label: int
    start: int
    end: int
    score: float


def frame_scores(bounds: list[tuple[int, int]], probs: np.ndarray, num_frames: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean window probabilities per frame: bounds [(start, end)] 1-based inclusive, probs
    float [W, C] -> (scores float64 [F, C], covered bool [F])."""
    c = probs.shape[1] if probs.ndim == 2 else 0
    total = np.zeros((num_frames, c))
    count = np.zeros(num_frames)
    for (a, b), p in zip(bounds, probs):
        total[a - 1:b] += p
        count[a - 1:b] += 1
    covered = count > 0
    total[covered] /= count[covered, None]
    return total, covered


def merge_windows(bounds: list[tuple[int, int]], probs: np.ndarray, num_frames: int, *,
                  min_len: int = 1, min_score: float = 0.0) -> list[Segment]:
    """Segments of one recording from its window scores (see the module doc), in time order."""
    if not bounds:
        return []
    scores, covered = frame_scores(bounds, np.asarray(probs, dtype=np.float64), num_frames)
    label = np.where(covered, scores.argmax(1), -1)
    out = []
    start = 0
    for f in range(1, num_frames + 1):
        if f == num_frames or label[f] != label[start]:
            lab = int(label[start])
            if lab >= 0 and f - start >= min_len:
                score = float(scores[start:f, lab].mean())
                if score >= min_score:
                    out.append(Segment(lab, start + 1, f, score))
            start = f
    return out


def pku_label_lines(segments: list[Segment]) -> str:
    """PKU-MMD label-file text: `label,start,end,score` a line (label 1-based)."""
    return "".join(f"{s.label + 1},{s.start},{s.end},{s.score:.4f}\n" for s in segments)


def write_pku_labels(out_dir: Path, video: str, segments: list[Segment]) -> Path:
    """Write `<out_dir>/<video>.txt` atomically; returns the path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{video}.txt"
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(pku_label_lines(segments))
    os.replace(tmp, path)
    return path
