"""Result files (`<run>/eval/<protocol>[_random].json`, DESIGN.md) and the table printed
on screen. A result file says which protocol and which selection produced it, on which
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


def result_path(out_dir: Path, protocol: str, encoder_label: str, variant: str = "") -> Path:
    """`<out>/eval/<protocol>[_<variant>][_random|_random<seed>].json`.

    encoder_label: "trained" or "random:SEED"; seed 0 gives `_random`, others
    `_random<SEED>`, so a baseline never overwrites the trained encoder's result.
    """
    name = protocol + (f"_{variant}" if variant else "")
    if encoder_label.startswith("random"):
        seed = encoder_label.partition(":")[2] or "0"
        name += "_random" if seed == "0" else f"_random{seed}"
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


def write_result(path: Path, *, protocol: str, selection: str, dataset: str, benchmark: str,
                 split_sizes: dict, metrics: dict, config, encoder: dict,
                 variant: str = "", extra: dict | None = None) -> dict:
    """Write one result file atomically and return its content.

    encoder: {"label": "trained"|"random:SEED", "sha256": str, "path": str|None,
    "run": str|None}. metrics: {name: value} with accuracies in percent.
    """
    record = {
        "protocol": protocol,
        "variant": variant,
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
        **(_jsonable(extra) if extra else {}),
    }
    if _main_process():  # under torchrun every rank holds the result; one writes it
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(_jsonable(record), indent=2) + "\n")
        os.replace(tmp, path)
    return record


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
    if path:
        console.print(f"written to {path}", soft_wrap=True)
