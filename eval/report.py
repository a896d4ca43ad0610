"""One table over several runs: every result file under `<run>/eval/`, one row per
(protocol, setting, encoder, selection), one column per run, and the paper's number."""
from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from .paper import paper_number


def load_results(run_dir: Path) -> list[dict]:
    """All result records of a run (`<run>/eval/*.json`), unreadable files skipped with a
    note in the record list (key `error`)."""
    out = []
    for p in sorted((Path(run_dir) / "eval").glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            out.append({"error": f"{p}: {e}"})
            continue
        if isinstance(rec, dict) and "protocol" in rec and "metrics" in rec:
            rec["_file"] = str(p)
            out.append(rec)
    return out


def row_key(rec: dict) -> tuple:
    return (rec["protocol"], rec.get("variant", ""), rec["dataset"], rec["benchmark"],
            rec["encoder"]["label"], rec["selection"])


def cell(rec: dict) -> str:
    m = rec["metrics"]
    if "top1" not in m:
        return "-"
    text = f"{m['top1']:.1f}"
    if "top1_std" in m:
        text += f" ± {m['top1_std']:.1f}"
    return text


def report_table(run_dirs: list[Path]) -> tuple[Table, list[str]]:
    """(rich table, problems) over the runs' result files."""
    rows: dict[tuple, dict[int, str]] = {}
    problems = []
    for j, run in enumerate(run_dirs):
        for rec in load_results(run):
            if "error" in rec:
                problems.append(rec["error"])
                continue
            rows.setdefault(row_key(rec), {})[j] = cell(rec)
    table = Table(title="Top-1 accuracy (%)")
    for name in ("protocol", "data", "encoder", "selection"):
        table.add_column(name)
    for run in run_dirs:
        table.add_column(Path(run).name, justify="right")
    table.add_column("paper", justify="right")
    for key in sorted(rows):
        protocol, variant, dataset, bench, label, selection = key
        paper = paper_number(protocol, dataset, bench, variant) if label == "trained" else None
        table.add_row(protocol + (f" {variant}" if variant else ""), f"{dataset} {bench}", label,
                      selection, *(rows[key].get(j, "") for j in range(len(run_dirs))),
                      f"{paper:.1f}" if paper is not None else "")
    return table, problems
