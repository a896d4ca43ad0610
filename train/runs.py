"""Run folders: `runs/<name>/` with `run.json` (where the data is, what is being
trained, how far it got), found again by `slim-eval` through `latest_run` / `read_run`.

run.json keys: `data` (absolute dataset folder), `dataset`, `benchmark`, `status`
(running | interrupted | failed | finished), `step`, `total_steps`, `code_version`,
`world_size`, `preset`, `created`, `updated` (UTC ISO times), `error` (why a `failed` run
stopped; null otherwise), `restarts` (torchrun's TORCHELASTIC_RESTART_COUNT of rank 0 in
the current launch; 0 outside torchrun) and `resumes` (one entry per start from a
checkpoint: `step`, `restart`, `world_size`, and the `previous_status` / `previous_error`
the run had then - `running` there means the previous attempt's rank 0 died without a
word, e.g. its node was lost)."""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

RUN_FILE = "run.json"
STATUSES = ("running", "interrupted", "failed", "finished")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_run(run_dir: str | os.PathLike) -> dict:
    """The run.json of `run_dir` as a dict. Raises FileNotFoundError (naming the file
    and how to make one) when missing, ValueError when it is not valid JSON."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a pretraining run folder "
                                "(make one with `slim-train pretrain --out DIR`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); rerun the pretraining command "
                         "to rewrite it") from None


def write_run(run_dir: str | os.PathLike, **fields) -> dict:
    """Merge `fields` into run.json (atomically), stamping `updated` (and `created`)."""
    path = Path(run_dir) / RUN_FILE
    data = json.loads(path.read_text()) if path.is_file() else {}
    if "status" in fields and fields["status"] not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {fields['status']!r}")
    data.update(fields)
    data.setdefault("created", _now())
    data["updated"] = _now()
    tmp = path.with_name(RUN_FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return data


def list_runs(root: str | os.PathLike = "runs") -> list[Path]:
    """Run folders under `root` (those with a run.json), oldest update first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if (p / RUN_FILE).is_file()]
    return sorted(runs, key=lambda p: ((p / RUN_FILE).stat().st_mtime, p.name))


def latest_run(root: str | os.PathLike = "runs") -> Path | None:
    """The most recently updated run folder under `root`, or None when there is none."""
    runs = list_runs(root)
    return runs[-1] if runs else None


def list_datasets(root: str | os.PathLike = "data") -> list[Path]:
    """Ingested dataset folders under `root` (those with a samples.h5 and a manifest)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if (p / "samples.h5").is_file() and (p / "manifest.parquet").is_file())


def default_run_dir(root: str | os.PathLike, stem: str, accepts) -> Path:
    """`root/stem`, or `root/stem-2`, `-3`, ...: the first folder that does not exist yet
    or that `accepts(folder)` (e.g. an unfinished run of the same config, to resume)."""
    root = Path(root)
    for i in range(1, 10_000):
        cand = root / (stem if i == 1 else f"{stem}-{i}")
        if not cand.exists() or accepts(cand):
            return cand
    raise RuntimeError(f"no free run folder name under {root} for {stem!r}")
