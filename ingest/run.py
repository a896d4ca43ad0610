"""One ingest run: plan -> parse chunks in worker processes (resumable) -> assemble.

Library entry point for other stages' tests:
    slim.ingest.run.ingest("synthetic", [raw_dir], out_root, workers=0, progress=False)
returns `out_root/<dataset>`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from slim.ingest import datasets, nwucla
from slim.ingest.ntu_reader import BadFile
from slim.ingest.center import VIEWS, normalization_for, with_view
from slim.ingest.versions import INGEST_VERSION
from slim.ingest.work import chunk_jobs, chunk_path, finished_card, process_chunk

WORK = ".work"
LOG_LIMIT = 20      # skipped / ignored files printed one by one; card.json lists them all


class IngestError(Exception):
    """A user error (wrong path, nothing to ingest): message names the fix."""


class IngestInterrupted(Exception):
    """The run was stopped by SIGTERM / SIGINT. Finished chunks are kept (a re-run of the
    same command resumes from them) and every worker process has been stopped.

    signal_name: "SIGTERM" | "SIGINT"; kept / total: parsed chunks on disk / in the plan;
    exit_code: 128 + the signal number (143, 130), the shell's convention."""

    def __init__(self, signal_name: str, kept: int, total: int, writing: bool = False):
        self.signal_name, self.kept, self.total = signal_name, kept, total
        self.exit_code = 128 + int(signal.Signals[signal_name])
        where = ("all chunks parsed, writing the outputs was stopped (nothing half-written is kept)"
                 if writing else f"{kept} of {total} chunks kept")
        super().__init__(f"interrupted by {signal_name}; {where}; run the same command to resume")


class _Stop(BaseException):
    """Raised in the main thread by the SIGTERM / SIGINT handler (a BaseException, so no
    `except Exception` on the way swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.name = signal.Signals(signum).name


class _StopSignals:
    """While active, SIGTERM and SIGINT raise _Stop in the main thread; outside the main
    thread (where Python cannot install handlers) nothing changes."""

    def __enter__(self):
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise _Stop(signum)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass(frozen=True)
class IngestConfig:
    dataset: str
    raw: tuple[str, ...]
    out: str = "data"
    workers: int = 2
    shard_size_mb: float = 64.0
    center: bool = True
    chunk_files: int = 64
    #: Stored skeleton layout: None = the dataset's own; another registered layout is
    #: reached by a mapping (topology.MAPPINGS), e.g. nwucla with "ntu25" for transfer.
    layout: str | None = None
    #: Body-centred view normalisation after centring: "none" | "yaw" | "full"
    #: (slim.ingest.center.view_rotation).
    view: str = "none"
    #: Shard encoding (slim.ingest.shards.ENCODINGS): f32 (default), f16, f32.gz, f16.gz.
    shard_encoding: str = "f32"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def out_name(self) -> str:
        """Folder under `out`: the dataset, plus `-<layout>` when mapped (nwucla-ntu25),
        so the native and the mapped ingest live side by side."""
        stored = datasets.resolve_layout(self.dataset, self.layout)
        return self.dataset if stored == datasets.NATIVE_LAYOUT[self.dataset] else f"{self.dataset}-{stored}"


def fingerprint(cfg: IngestConfig, jobs: list[datasets.Job], seen: list[str] = ()) -> str:
    """What decides the outputs: dataset, options, versions, every raw file's name, size
    and mtime, and the names of the other files seen (they are accounted for in the card).
    A changed fingerprint discards the parsed chunks of an older run."""
    h = hashlib.sha256()
    h.update(json.dumps([cfg.dataset, cfg.center, cfg.chunk_files, INGEST_VERSION]).encode())
    if cfg.layout is not None:
        h.update(json.dumps(["layout", datasets.resolve_layout(cfg.dataset, cfg.layout)]).encode())
    if cfg.view != "none":
        h.update(json.dumps(["view", cfg.view]).encode())
    if cfg.shard_encoding != "f32":
        h.update(json.dumps(["shard_encoding", cfg.shard_encoding]).encode())
    for job in jobs:
        for p in job.paths:
            st = os.stat(nwucla.stat_path(p))
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update("\0".join(seen).encode())
    return h.hexdigest()


def check_raw(raw: tuple[str, ...], archives: bool = False) -> list[Path]:
    """The --raw paths as Paths: folders, or (archives=True) also .zip files. Raises
    IngestError naming the bad one."""
    if not raw:
        raise IngestError("no --raw folder given")
    dirs = []
    for r in raw:
        p = Path(r)
        if archives and p.is_file() and p.suffix.lower() == ".zip":
            dirs.append(p)
            continue
        if not p.is_dir():
            raise IngestError(f"--raw {r}: no such folder" + (" or .zip archive" if archives else ""))
        dirs.append(p)
    return dirs


def run(cfg: IngestConfig, *, progress: bool = True, log: Callable[[str], None] = print,
        on_chunk_done: Callable[[dict], None] | None = None) -> tuple[Path, dict]:
    """Ingest per cfg; returns (output folder, card). Re-running a finished run with the
    same inputs does nothing; an interrupted run resumes from its finished chunks."""
    if cfg.dataset not in datasets.DATASETS:
        raise IngestError(f"unknown dataset {cfg.dataset!r}; one of {', '.join(datasets.DATASETS)}")
    raw_dirs = check_raw(cfg.raw, archives=cfg.dataset in datasets.ARCHIVE_OK)
    if cfg.view not in VIEWS:
        raise IngestError(f"unknown view normalisation {cfg.view!r}; one of {', '.join(VIEWS)}")
    try:
        plan = datasets.plan(cfg.dataset, raw_dirs, cfg.layout)
    except KeyError as e:
        raise IngestError(f"--layout {cfg.layout}: {e.args[0]}") from None
    except BadFile as e:
        raise IngestError(str(e)) from None
    if not plan.jobs:
        suffix = {"pku2": "AxxNyy-V.txt skeleton + label", "nwucla": "aAA_sSS_eEE_vVV.json"}.get(
            cfg.dataset, "*.skeleton")
        seen = plan.skipped + plan.ignored
        example = "; e.g. " + "; ".join(f"{s['path']}: {s['reason']}" for s in seen[:3]) if seen else ""
        raise IngestError(f"no {suffix} files to ingest under {', '.join(cfg.raw)} ({plan.files_seen} "
                          f"files seen: {len(plan.skipped)} skipped, {len(plan.ignored)} ignored{example}); "
                          "point --raw at the dataset's folder")
    for kind, rows in (("skipped", plan.skipped), ("ignored", plan.ignored)):
        for s in rows[:LOG_LIMIT]:
            log(f"{kind} {s['path']}: {s['reason']}")
        if len(rows) > LOG_LIMIT:
            log(f"... and {len(rows) - LOG_LIMIT} more {kind} files (all listed in card.json)")
    out_dir = Path(cfg.out) / cfg.out_name()
    fp = fingerprint(cfg, plan.jobs, plan.seen)
    card = finished_card(out_dir, fp)
    if card is not None:
        log(f"{out_dir}: already complete for these inputs ({card['num_samples']} samples)")
        return out_dir, card
    # The outputs may change from here on: no card may vouch for them until the new one is
    # written (a stale card of other inputs would make their command say "complete").
    (out_dir / "card.json").unlink(missing_ok=True)
    work = out_dir / WORK
    stamp = work / "fingerprint"
    if work.is_dir() and (not stamp.is_file() or stamp.read_text() != fp):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fp)
    chunks = chunk_jobs(plan.jobs, cfg.chunk_files)
    todo = [k for k in range(len(chunks)) if not chunk_path(work, k).is_file()]
    if len(todo) < len(chunks):
        log(f"resuming: {len(chunks) - len(todo)} of {len(chunks)} chunks already parsed")
    args = [(k, cfg.dataset, chunks[k], cfg.center, str(work), plan.layout, cfg.view) for k in todo]
    writing = False
    try:
        with contextlib.ExitStack() as stack, _StopSignals(), _Progress(progress) as bar:
            task = bar.add("parse + denoise", sum(len(chunks[k]) for k in todo))
            parsed = stack.enter_context(contextlib.closing(_map(process_chunk, args, cfg.workers)))
            for summary in parsed:
                for s in summary["skipped"]:
                    log(f"skipped {s.get('path', s['file'])}: {s['reason']}")
                bar.advance(task, len(chunks[summary["k"]]))
                if on_chunk_done:
                    on_chunk_done(summary)
            # Imported here, not at module level: spawned workers import this module (via
            # __main__) and must not pay for h5py + pyarrow, which only the writer needs.
            from slim.ingest.assemble import assemble_outputs
            writing = True
            task = bar.add("write h5 + shards", len(plan.jobs))
            k_sizes = iter([len(c) for c in chunks])
            normalization = with_view(normalization_for(plan.layout) if cfg.center
                                      else "none (raw camera coordinates, metres)", cfg.view)
            card = assemble_outputs(out_dir, cfg.dataset, [chunk_path(work, k) for k in range(len(chunks))],
                                    plan, normalization=normalization, shard_size_mb=cfg.shard_size_mb,
                                    config=cfg.to_dict(), fingerprint=fp,
                                    shard_encoding=cfg.shard_encoding,
                                    on_chunk=lambda n: bar.advance(task, next(k_sizes)))
    except _Stop as stop:
        kept = sum(chunk_path(work, k).is_file() for k in range(len(chunks)))
        raise IngestInterrupted(stop.name, kept, len(chunks), writing) from None
    shutil.rmtree(work, ignore_errors=True)
    for w in card["warnings"]:
        log(f"warning: {w}")
    return out_dir, card


def _worker_init() -> None:
    """In each worker: leave Ctrl-C to the main process (which stops the pool), and on
    Linux die with the main process even when it is SIGKILLed (PR_SET_PDEATHSIG)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the main process stops the pool itself
        pass


def stop_pool(pool: ProcessPoolExecutor, timeout: float = 5.0) -> None:
    """Stop a process pool now: cancel what has not started, terminate the running
    workers (their chunks are written under a temporary name, so nothing half-done is
    kept) and reap them; SIGKILL whatever has not exited after `timeout` seconds."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout)
        if p.is_alive():
            p.kill()
            p.join(timeout)


def _map(fn, args: list, workers: int):
    """fn over args in worker processes (spawn: safe with threads and on every OS), results
    as they finish; in-process when workers <= 1 (cheaper for tiny runs and tests). Any
    exception (a signal's _Stop included) stops every worker before it propagates."""
    if workers <= 1 or len(args) <= 1:
        for a in args:
            yield fn(a)
        return
    pool = ProcessPoolExecutor(min(workers, len(args)), mp_context=mp.get_context("spawn"),
                               initializer=_worker_init)
    try:
        futures = [pool.submit(fn, a) for a in args]
        for f in as_completed(futures):
            yield f.result()
    except BrokenProcessPool as exc:
        # A multiprocessing.Pool would respawn workers that die at start-up forever
        # (e.g. when the caller is a `python -` script that spawn cannot re-import).
        stop_pool(pool)
        raise RuntimeError(
            "ingest worker processes could not start or died; finished chunks are kept and a re-run "
            "resumes. If you called ingest() from an interactive session or a script read from "
            "stdin, run it from a file or the slim-ingest command, or pass workers=0") from exc
    except BaseException:
        stop_pool(pool)
        raise
    else:
        pool.shutdown(wait=True)


class _Progress:
    """Rich progress bars with ETA, or nothing."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._p = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
            self._p.__enter__()
        return self

    def add(self, name: str, total: int):
        return self._p.add_task(name, total=total) if self._p else None

    def advance(self, task, n: int) -> None:
        if self._p:
            self._p.advance(task, n)

    def __exit__(self, *exc):
        if self._p:
            self._p.__exit__(*exc)


def ingest(dataset: str, raw_dirs, out_root, *, workers: int = 0, progress: bool = False,
           center: bool = True, shard_size_mb: float = 64.0, layout: str | None = None,
           view: str = "none", shard_encoding: str = "f32") -> Path:
    """Make `out_root/<dataset>` (`<dataset>-<layout>` when mapped) from raw folders (a
    path or a list); returns that folder. Quiet and in-process by default: the call
    other stages' tests use."""
    raw = (raw_dirs,) if isinstance(raw_dirs, (str, os.PathLike)) else tuple(raw_dirs)
    cfg = IngestConfig(dataset=dataset, raw=tuple(str(r) for r in raw), out=str(out_root),
                       workers=workers, center=center, shard_size_mb=shard_size_mb, layout=layout,
                       view=view, shard_encoding=shard_encoding)
    out, _ = run(cfg, progress=progress, log=lambda s: None)
    return out
