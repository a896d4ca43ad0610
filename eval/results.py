"""Result files (`<run>/eval/<protocol>_<dataset>_<benchmark>[_...].json`, one per
setting, and `<run>/eval/<protocol>.json`, a copy of the newest of them), the append-only log `<run>/eval/results.jsonl` of every evaluation, and the
table printed on screen. A result file says which protocol and which selection produced it, on which
data, with which encoder (sha256) and code version, so a number is never orphaned."""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path

from rich.table import Table

from slim.ingest.clitools import console
from slim.ingest.versions import code_version

from .paper import paper_number


def encoder_tag(label: str, encoder_path: Path | str | None, run_dir: Path | str | None,
                sha256: str = "") -> str:
    """The part of a result file name that names the encoder: "" for a run's own trained
    encoder, `random<SEED>` for a baseline, `enc-<file stem>-<sha256[:8]>` for an encoder
    file given without its run (so two files in one folder never share a result)."""
    if label.startswith("random"):
        return "random" + (label.partition(":")[2] or "0")
    if run_dir is None and encoder_path is not None:
        return f"enc-{Path(encoder_path).stem}" + (f"-{sha256[:8]}" if sha256 else "")
    return ""


def result_path(out_dir: Path, protocol: str, *, dataset: str, benchmark: str, variant: str = "",
                settings: dict | None = None, encoder: str = "") -> Path:
    """`<out>/eval/<protocol>_<dataset>_<benchmark>[_<variant>][_<setting>...][_<encoder>].json`:
    one file per (protocol, dataset, benchmark, variant, settings, encoder), so runs of
    another benchmark, k, pooling or selection never overwrite each other; the same
    setting run again replaces its file (every run stays in `eval/results.jsonl`).

    settings: {"k": [1, 10], "pool": "cls+mean", "selection": "val"} (any subset), written
    as `k1-10`, `cls+mean`, `sel-val`. encoder: `encoder_tag(...)`.
    """
    parts = [protocol, dataset, benchmark] + ([variant] if variant else [])
    for key, value in (settings or {}).items():
        if key == "k":
            parts.append("k" + "-".join(str(k) for k in value))
        elif key == "selection":
            parts.append(f"sel-{value}")
        else:
            parts.append(str(value))
    if encoder:
        parts.append(encoder)
    name = "_".join(p.replace("/", "-").replace(" ", "") for p in parts)
    return Path(out_dir) / "eval" / f"{name}.json"


def _jsonable(obj):
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def target_result_path(target, protocol: str, variant: str = "", settings: dict | None = None,
                       dataset: str | None = None) -> Path:
    """result_path for an EvalTarget (its out_dir, dataset, benchmark and encoder)."""
    tag = encoder_tag(target.label, target.encoder_path, target.run_dir, target.sha256)
    return result_path(target.out_dir, protocol, dataset=dataset or target.dataset,
                       benchmark=target.benchmark, variant=variant, settings=settings, encoder=tag)


RESULTS_LOG = "results.jsonl"


def write_result(path: Path, *, protocol: str, selection: str, dataset: str, benchmark: str,
                 split_sizes: dict, metrics: dict, config, encoder: dict,
                 variant: str = "", settings: dict | None = None, extra: dict | None = None) -> dict:
    """Write one result file atomically, append the record to `eval/results.jsonl`
    (append-only: every evaluation ever run is kept there, in order) and return it.

    encoder: {"label": "trained"|"random:SEED", "sha256": str, "path": str|None,
    "run": str|None, "run_status": {"status", "step", "total_steps"}|None}.
    metrics: {name: value} with accuracies in percent. settings: what the file name
    encodes besides protocol / data / variant (k, pool, selection).
    """
    run_status = encoder.get("run_status") or None
    warnings = []
    if run_status and run_status.get("status") != "finished" and encoder.get("label") == "trained":
        warnings.append(f"the run was not finished (status {run_status.get('status')}, step "
                        f"{run_status.get('step')} of {run_status.get('total_steps')})")
    record = {
        "protocol": protocol,
        "variant": variant,
        "settings": settings or {},
        "selection": selection,
        "dataset": dataset,
        "benchmark": benchmark,
        "split_sizes": split_sizes,
        "metrics": metrics,
        "config": _jsonable(config),
        "encoder": encoder,
        "encoder_sha256": encoder.get("sha256"),
        "code_version": code_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "paper": paper_number(protocol, dataset, benchmark, variant),
        "run_status": run_status,
        "warnings": warnings,
        **(_jsonable(extra) if extra else {}),
    }
    if _main_process():  # under torchrun every rank holds the result; one writes it
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(path, _jsonable(record))
        latest = latest_path(path.parent, protocol, variant, encoder)
        if latest != path:
            _write_json(latest, {**_jsonable(record), LATEST_KEY: path.name})
        append_log(path.parent / RESULTS_LOG, {**_jsonable(record), "file": path.name})
    return record


#: Key of a latest-result copy naming the per-setting file it copies.
LATEST_KEY = "latest_of"


def latest_path(eval_dir: Path, protocol: str, variant: str = "", encoder: dict | None = None) -> Path:
    """`<eval>/<protocol>[_<variant>][_<encoder tag>].json`, e.g. `eval/finetune.json`,
    `eval/semi_10pct.json`, `eval/linear_random3.json`: a copy of the newest result of that
    protocol and encoder in the folder, whatever its settings (named like the classifier
    files, `eval/<protocol>.classifier.pt`), for scripts that want "the" result without
    spelling out the settings. The copy carries `latest_of`: the per-setting file's name.
    Every result stays in its per-setting file and in `eval/results.jsonl`."""
    enc = encoder or {}
    tag = encoder_tag(enc.get("label", "trained"), enc.get("path"), enc.get("run"), enc.get("sha256") or "")
    name = "_".join([protocol] + ([variant] if variant else []) + ([tag] if tag else []))
    return Path(eval_dir) / f"{name.replace('/', '-').replace(' ', '')}.json"


def _write_json(path: Path, obj: dict) -> None:
    """Write `obj` as indented JSON to `path` atomically (tmp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def append_log(log: Path, record: dict) -> None:
    """Append one JSON line to the results log (never rewritten: one write of one line
    with O_APPEND, flushed to disk before returning)."""
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _main_process() -> bool:
    import torch.distributed as dist
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def print_result(record: dict, path: Path | None = None) -> None:
    """One rich table: the metrics of a result, with the paper's number beside top-1."""
    if not _main_process():
        return
    title = (f"{record['protocol']}{' ' + record['variant'] if record.get('variant') else ''}"
             f" · {record['dataset']} {record['benchmark']} · encoder "
             f"{record['encoder']['label']} · selection on {record['selection']}")
    console.print(f"[italic]{title}[/]", soft_wrap=True)  # above, not wrapped into the table
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in record["metrics"].items():
        if isinstance(v, list):
            v = ", ".join(f"{e:.2f}" if isinstance(e, float) else str(e) for e in v)
        table.add_row(k, f"{v:.2f}" if isinstance(v, float) else str(v))
    if record.get("paper") is not None:
        table.add_row("paper (top-1)", f"{record['paper']:.1f}")
    console.print(table)
    # On their own lines, never wrapped into the table's width (readable in logs and pipes).
    sizes = ", ".join(f"{k} {v}" for k, v in record["split_sizes"].items())
    console.print(f"splits: {sizes}", soft_wrap=True)
    for w in record.get("warnings") or []:
        console.print(f"[yellow]note:[/] {w}", soft_wrap=True)
    if path:
        console.print(f"written to {path}", soft_wrap=True)
        if not record.get("reused"):
            console.print(f"logged in {Path(path).parent / RESULTS_LOG}", soft_wrap=True)
