"""Shared benchmark plumbing: medians, the machine header, and merging figures under
each benchmark's own key (written atomically) into `bench/local.json`, this machine's
untracked figures, or, with `--publish` (`make bench PUBLISH=1`), into the tracked
`bench/results.json` that the README quotes: published figures change only on purpose."""
from __future__ import annotations

import datetime as _dt
import json
import os
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from slim.ingest.versions import code_version, machine_info

BENCH = Path(__file__).resolve().parent.parent / "bench"
RESULTS = BENCH / "results.json"       # published (tracked), quoted in the README
LOCAL = BENCH / "local.json"           # this machine's figures (git-ignored)
PUBLISH_ENV = "SLIM_BENCH_PUBLISH"


def results_path() -> Path:
    """Where `record` writes: LOCAL unless $SLIM_BENCH_PUBLISH=1 (benchmarks.run --publish)."""
    return RESULTS if os.environ.get(PUBLISH_ENV) == "1" else LOCAL


def table_path(name: str, results: Path | None = None) -> Path:
    """Where a benchmark's Markdown table goes: `bench/<name>.md` (tracked, quoted in the
    README) beside the published results, else `<folder>/<name>.<results stem>.md`
    (`bench/nwucla.local.md`, git-ignored), so a local run never rewrites a published table."""
    results = Path(results) if results is not None else results_path()
    return results.parent / (f"{name}.md" if results.resolve() == RESULTS.resolve() else f"{name}.{results.stem}.md")


console = Console()


results_path_default = results_path


def median_time(fn, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of fn() in seconds over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def record(section: str, figures: dict, results_path: Path | None = None) -> dict:
    """Merge `figures` (flat keys without the section prefix) into the results file
    (default: `results_path()`) as `section.key`, with the machine, date and commit;
    print them as a table and say where they went."""
    results_path = results_path or results_path_default()
    results_path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(results_path.read_text()) if results_path.exists() else {}
    data[section] = {
        **figures,
        "_machine": machine_info(),
        "_date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "_commit": code_version(),
    }
    tmp = results_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, results_path)
    table = Table(title=f"bench: {section}")
    table.add_column("key")
    table.add_column("value", justify="right")
    for k, v in figures.items():
        table.add_row(f"{section}.{k}", f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)
    where = ("published figures: commit it if you mean to change the README's numbers"
             if results_path == RESULTS else "this machine's figures (untracked); "
             "`make bench PUBLISH=1` writes bench/results.json, which the README quotes")
    console.print(f"[dim]written to {results_path}: {where}[/]")
    return data
