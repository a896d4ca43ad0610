"""One table over several runs, from each run's append-only `eval/results.jsonl` (or, for
folders evaluated before the log existed, its `eval/*.json` files): one row per
(protocol, variant, data, k, pool, selection, encoder), one column per run holding the
latest result of that setting, and the paper's number.

The table is plain rows (`report_rows`), rendered for the terminal (`rich_table`, fits
80 columns), as Markdown (`markdown`) or CSV (`csv_text`)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.table import Table

from .paper import paper_number

LOG = "results.jsonl"


def is_result(rec) -> bool:
    return isinstance(rec, dict) and "protocol" in rec and "metrics" in rec


def load_results(run_dir: Path) -> list[dict]:
    """Every result record of a folder, oldest first: the lines of `eval/results.jsonl`,
    or the `eval/*.json` files when there is no log. A line or file that cannot be read
    gives a record {"error": "..."} instead (the rest are still read)."""
    ev = Path(run_dir) / "eval"
    out = []
    log = ev / LOG
    if log.is_file():
        for n, line in enumerate(log.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                out.append({"error": f"{log} line {n}: {e}"})
                continue
            if is_result(rec):
                out.append(rec)
        return out
    for p in sorted(ev.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            rec = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            out.append({"error": f"{p}: {e}"})
            continue
        if is_result(rec) and "latest_of" not in rec:  # a latest-result copy repeats its file
            out.append({**rec, "file": p.name})
    return out


def _settings(rec: dict) -> dict:
    """k, pool, selection of a record (older records: from their config)."""
    s = dict(rec.get("settings") or {})
    cfg = rec.get("config") or {}
    if "pool" not in s:
        s["pool"] = (cfg.get("features") or {}).get("pool") or (cfg.get("train") or {}).get("pool") or ""
    if rec["protocol"] == "retrieval" and "k" not in s:
        s["k"] = list(cfg.get("ks") or [1])
    s.setdefault("selection", rec.get("selection", ""))
    return s


def _encoder_name(rec: dict) -> str:
    enc = rec.get("encoder") or {}
    label = enc.get("label", "?")
    if label == "trained" and not enc.get("run") and enc.get("path"):
        return Path(enc["path"]).name
    return label


def _entries(rec: dict):
    """(row key, value text) pairs of one record: retrieval gives one per k."""
    s = _settings(rec)
    m = rec["metrics"]
    base = (rec["protocol"], rec.get("variant", ""), rec["dataset"], rec["benchmark"])
    tail = (s.get("pool", ""), s.get("selection", ""), _encoder_name(rec))
    status = rec.get("run_status") or {}
    mark = "*" if status and status.get("status") not in (None, "finished") \
        and (rec.get("encoder") or {}).get("label") == "trained" else ""
    if rec["protocol"] == "retrieval":
        for k in s.get("k") or [1]:
            v = m.get(f"top1_k{k}", m.get("top1") if k == 1 else None)
            if v is not None:
                yield base + (str(k),) + tail, f"{v:.1f}{mark}"
        return
    if "top1" not in m:
        return
    text = f"{m['top1']:.1f}" + (f" ± {m['top1_std']:.1f}" if "top1_std" in m else "") + mark
    yield base + ("",) + tail, text


HEADER = ("protocol", "data", "k", "pool", "sel", "encoder")


def report_rows(run_dirs: list[Path]) -> tuple[list[str], list[list[str]], list[str], bool]:
    """(header, rows, problems, any_unfinished). Each row: the setting columns of HEADER,
    then the latest top-1 (%) of each run ("" when absent; "*" marks a result of an
    unfinished run), then the paper's number ("" where the paper has none)."""
    cells: dict[tuple, dict[int, str]] = {}
    problems = []
    for j, run in enumerate(run_dirs):
        for rec in load_results(run):
            if "error" in rec:
                problems.append(rec["error"])
                continue
            try:
                for key, text in _entries(rec):
                    cells.setdefault(key, {})[j] = text   # later lines win: the latest result
            except (KeyError, TypeError, ValueError) as e:
                problems.append(f"{run}: a record without {e} ({rec.get('file', '?')})")
    header = list(HEADER) + [Path(r).name for r in run_dirs] + ["paper"]
    rows = []
    for key in sorted(cells):
        protocol, variant, dataset, bench, k, pool, sel, enc = key
        paper = None
        if enc == "trained" and k in ("", "1") and sel in ("val", "test", "none"):
            paper = paper_number(protocol, dataset, bench, variant)
        rows.append([protocol + (f" {variant}" if variant else ""), f"{dataset} {bench}", k, pool, sel, enc,
                     *(cells[key].get(j, "") for j in range(len(run_dirs))),
                     f"{paper:.1f}" if paper is not None else ""])
    unfinished = any(c.endswith("*") for r in rows for c in r)
    return header, rows, problems, unfinished


def rich_table(header: list[str], rows: list[list[str]], note: str = "") -> Table:
    """The rows as a compact rich table that fits 80 columns: a setting column with one
    value in every row moves into the title, long run names become [1], [2], ... with a
    legend below, and cells never wrap mid-word."""
    from rich import box
    n_set = len(HEADER)
    keep = list(range(len(header)))
    fixed = []
    if len(rows) > 1:
        for i in range(n_set):
            values = {r[i] for r in rows}
            if len(values) == 1:
                keep.remove(i)
                if next(iter(values)):
                    fixed.append(f"{header[i]} {next(iter(values))}")
    names = header[n_set:-1]
    legend = []
    if sum(len(n) for n in names) > 24:
        legend = [f"[{j + 1}] {n}" for j, n in enumerate(names)]
        names = [f"[{j + 1}]" for j in range(len(names))]
    shown = header[:n_set] + names + header[-1:]
    title = "Top-1 accuracy (%)" + "".join(f" · {f}" for f in fixed)
    caption = "\n".join(x for x in ["  ".join(legend), note] if x)
    table = Table(title=title, caption=caption or None, box=box.SIMPLE_HEAD, pad_edge=False)
    for i in keep:
        table.add_column(shown[i], justify="right" if i >= n_set else "left", no_wrap=i < n_set)
    for r in rows:
        table.add_row(*(r[i] for i in keep))
    return table


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table (pipes in cells escaped)."""
    esc = [[c.replace("|", "\\|") for c in r] for r in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |",
             "|" + "|".join("---:" if i >= len(HEADER) else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines) + "\n"


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    """The rows as CSV (a header line, then one line per row)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def report_table(run_dirs: list[Path]) -> tuple[Table, list[str]]:
    """(rich table, problems) over the runs' results (kept for library callers)."""
    header, rows, problems, _ = report_rows(run_dirs)
    return rich_table(header, rows), problems
