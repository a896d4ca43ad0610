"""`slim-ingest info DIR`: what an ingested folder holds."""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
from rich.table import Table

from slim.ingest.clitools import console, fail


@click.command("info")
@click.argument("folder", type=click.Path())
def info(folder):
    """Samples, classes, frames, persons, splits, subsets and skipped files."""
    from slim.ingest.manifest import read_manifest
    card_path = Path(folder) / "card.json"
    if not card_path.is_file():
        fail(f"{card_path}: missing", "ingest first: slim-ingest <dataset> --raw DIR --out DIR")
    try:
        card = json.loads(card_path.read_text())
        table, meta = read_manifest(folder)
    except (OSError, ValueError) as exc:   # bad JSON, a damaged parquet (ArrowInvalid)
        fail(f"{folder}: cannot be read ({exc})", f"re-run the ingest; `slim-ingest verify {folder}` "
             "says which file is damaged")
    frames = table.column("num_frames").to_numpy()
    persons = table.column("num_persons").to_numpy()
    t = Table(title=f"{folder} ({card['dataset']}, ingest v{card['ingest_version']})")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("samples", str(card["num_samples"]))
    t.add_row("classes", str(card["num_classes"]))
    gaps = class_gaps(table, meta, card)
    t.add_row("classes with samples", f"{card['num_classes'] - len(gaps['empty'])} of {card['num_classes']}")
    lay = card.get("layout_info") or {"name": card.get("layout", "ntu25 (before layouts were recorded)")}
    filled = (lay.get("mapped") or {}).get("filled_joints")
    t.add_row("layout", f"{lay['name']}" + (f", {lay['joints']} joints" if "joints" in lay else "")
              + (f"; filled: {', '.join(filled)}" if filled else ""))
    if len(frames):
        q = np.percentile(frames, [0, 5, 50, 95, 100]).astype(int)
        t.add_row("frames min/p5/median/p95/max", "/".join(map(str, q)))
    for m in (1, 2):
        t.add_row(f"samples with {m} person(s)", str(int((persons == m).sum())))
    for bench, v in card["benchmarks"].items():
        t.add_row(f"{bench} train / test", f"{v['train']} / {v['test']}")
    for name, v in card.get("subsets", {}).items():
        t.add_row(f"subset {name}", str(v))
    for name, v in card.get("shards", {}).items():
        t.add_row(f"shards {name}", str(v))
    t.add_row("normalization", card["normalization"])
    t.add_row("skipped files", str(len(card["skipped"])))
    t.add_row("ignored files (not data)", str(len(card.get("ignored", []))))
    console.print(t)
    if card["skipped"]:
        s = Table(title="skipped")
        s.add_column("file")
        s.add_column("reason")
        for row in card["skipped"][:50]:
            s.add_row(row["file"], row["reason"])
        console.print(s)
        if len(card["skipped"]) > 50:
            console.print(f"... and {len(card['skipped']) - 50} more (card.json)")
    names = list(meta.get("class_names") or card.get("class_names") or [])
    if gaps["empty"]:
        console.print(f"[yellow]empty classes[/] ({len(gaps['empty'])}, no sample at all): "
                      + ", ".join(_label(c, names) for c in gaps["empty"]))
    for col, missing in gaps["splits"].items():
        console.print(f"[yellow]{col}[/] lacks {len(missing)} class(es) that have samples elsewhere: "
                      + ", ".join(_label(c, names) for c in missing))
    for w in card["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")


def _label(c: int, names: list[str]) -> str:
    return f"A{c + 1:03d}" + (f" {names[c]}" if c < len(names) else "")


def class_gaps(table, meta: dict, card: dict) -> dict:
    """{"empty": [0-based labels with no sample], "splits": {"<bench>_<train|test>":
    [labels with samples in the dataset but none in that split]}} (e.g. the PKU-MMD II
    classes a partial download lacks)."""
    labels = table.column("label").to_numpy().astype(int)
    n = int(card["num_classes"])
    counts = np.bincount(labels, minlength=n)
    present = set(np.flatnonzero(counts).tolist())
    out = {"empty": [c for c in range(n) if counts[c] == 0], "splits": {}}
    for bench in meta.get("benchmarks") or list(card.get("benchmarks", {})):
        for split in ("train", "test"):
            col = f"{bench}_{split}"
            if col not in table.column_names:
                continue
            sel = table.column(col).to_numpy(zero_copy_only=False).astype(bool)
            have = set(np.unique(labels[sel]).tolist())
            missing = sorted(present - have)
            if missing:
                out["splits"][col] = missing
    return out
