"""What `slim-eval predict` shows and writes: the table on screen, the rows as CSV /
JSON lines / Parquet (written atomically), accuracy and the confusion matrix when labels
are known (and as a PNG, matplotlib extra), and the merged segments of long recordings
as PKU-MMD label files."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
from rich.table import Table

from .predict import Prediction

OUT_SUFFIXES = (".csv", ".jsonl", ".parquet")
SCREEN_ROWS = 40


def flat_rows(pred: Prediction, k: int) -> list[dict]:
    """One dict per row: id, source, [video, start, end,] label (true class name or ""),
    top1, p1, ..., topk, pk (probabilities rounded to 6 digits)."""
    idx, val = pred.top(k)
    windows = any(v is not None for v in pred.videos)
    rows = []
    for i in range(len(pred)):
        r = {"id": pred.ids[i], "source": pred.sources[i]}
        if windows:
            r.update(video=pred.videos[i], start=pred.starts[i], end=pred.ends[i])
        y = pred.labels[i]
        r["label"] = pred.class_names[y] if y is not None else ""
        for j in range(idx.shape[1]):
            r[f"top{j + 1}"] = pred.class_names[int(idx[i, j])]
            r[f"p{j + 1}"] = round(float(val[i, j]), 6)
        rows.append(r)
    return rows


def write_rows(path: Path, pred: Prediction, k: int) -> Path:
    """Write the rows to `path` by its suffix (.csv | .jsonl | .parquet), atomically.
    JSON lines carry `top` as a list of {class, prob} instead of flat columns. Raises
    ValueError for another suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUT_SUFFIXES:
        raise ValueError(f"--out {path}: unknown format {suffix or '(no suffix)'!r}; use one of {OUT_SUFFIXES}")
    rows = flat_rows(pred, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    if suffix == ".csv":
        buf = io.StringIO()
        fields = list(rows[0]) if rows else ["id", "source", "label"]
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        tmp.write_text(buf.getvalue())
    elif suffix == ".jsonl":
        lines = []
        for r in rows:
            top = [{"class": r.pop(f"top{j}"), "prob": r.pop(f"p{j}")}
                   for j in range(1, k + 1) if f"top{j}" in r]
            lines.append(json.dumps({**r, "top": top}))
        tmp.write_text("".join(ln + "\n" for ln in lines))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.Table.from_pylist(rows), tmp)
    os.replace(tmp, path)
    return path


def rows_table(pred: Prediction, k: int, limit: int = SCREEN_ROWS) -> Table:
    """The first `limit` rows as a rich table: id, true label (when any), top-k as
    `name  prob`."""
    rows = flat_rows(pred, k)
    labelled = any(y is not None for y in pred.labels)
    t = Table(title=f"predictions ({len(rows)})", title_justify="left")
    t.add_column("id", overflow="fold")
    if labelled:
        t.add_column("label")
    kk = min(k, len(pred.class_names))
    for j in range(1, kk + 1):
        t.add_column(f"top {j}")
    for r in rows[:limit]:
        cells = [r["id"]] + ([r["label"]] if labelled else [])
        for j in range(1, kk + 1):
            mark = "[green]" if labelled and r[f"top{j}"] == r["label"] else ""
            cells.append(f"{mark}{r[f'top{j}']} {r[f'p{j}']:.2f}" + ("[/]" if mark else ""))
        t.add_row(*cells)
    return t


def confusion_table(pred: Prediction, max_classes: int = 12) -> Table | None:
    """Confusion counts over the classes that occur (true or predicted) when at most
    `max_classes` do; else the most frequent confusions as a list. None without labels."""
    if pred.labelled().size == 0:
        return None
    m = pred.confusion()
    occur = np.flatnonzero(m.sum(0) + m.sum(1))
    names = pred.class_names
    if occur.size <= max_classes:
        t = Table(title="confusion (rows: true class, columns: predicted class number)", title_justify="left")
        t.add_column("true class")
        for c in occur:
            t.add_column(f"#{c + 1}", justify="right")
        for r in occur:
            t.add_row(f"#{r + 1} {names[r]}", *[str(m[r, c]) if m[r, c] else "." for c in occur])
        return t
    t = Table(title="most frequent confusions", title_justify="left")
    t.add_column("true")
    t.add_column("predicted")
    t.add_column("count", justify="right")
    off = m.copy()
    np.fill_diagonal(off, 0)
    for flat in np.argsort(-off, axis=None)[:10]:
        r, c = divmod(int(flat), m.shape[1])
        if off[r, c] == 0:
            break
        t.add_row(names[r], names[c], str(off[r, c]))
    return t


def draw_confusion(path: Path, pred: Prediction) -> Path:
    """The confusion matrix of the labelled rows (classes that occur) as an image;
    raises ImportError without matplotlib, ValueError without labels."""
    if pred.labelled().size == 0:
        raise ValueError("no input has a known label: there is no confusion matrix to draw")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m = pred.confusion()
    occur = np.flatnonzero(m.sum(0) + m.sum(1))
    sub = m[np.ix_(occur, occur)]
    names = [pred.class_names[i] for i in occur]
    size = max(4.0, 0.35 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(sub, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = pred.accuracy()
    ax.set_title(f"top-1 {acc:.1f}% on {pred.labelled().size} labelled sequences")
    for (r, c), v in np.ndenumerate(sub):
        if v:
            ax.text(c, r, str(v), ha="center", va="center", fontsize=6,
                    color="white" if v > sub.max() / 2 else "black")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".{os.getpid()}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def segments_table(pred: Prediction) -> Table:
    """Merged segments of every recording: video, label, start, end, score."""
    t = Table(title="segments (frames 1-based, inclusive)", title_justify="left")
    for col in ("video", "label", "start", "end", "score"):
        t.add_column(col, justify="right" if col in ("start", "end", "score") else "left")
    for video, segs in pred.segments.items():
        for s in segs:
            t.add_row(video, pred.class_names[s.label], str(s.start), str(s.end), f"{s.score:.2f}")
    return t
