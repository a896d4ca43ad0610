"""`make demo`: the whole system on the synthetic dataset, end to end, on a CPU.

generate raw NTU-format files -> ingest -> pretrain (preset cpu-demo) -> retrieval k=1
and linear evaluation of the pretrained teacher encoder and of a randomly initialised
encoder of the same architecture -> a table and `runs/<name>/summary.json`.

Every step reuses what exists: the generator skips identical files, ingest is
resumable and a no-op when finished, pretraining resumes its run folder (and does
nothing when finished), and evaluation reuses its cached features.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from slim.ingest.clitools import console


@dataclass(frozen=True)
class DemoConfig:
    """One demo size. `synth_*` size the synthetic dataset; `sets` override the cpu-demo
    pretraining preset; `linear_epochs` is the linear probe's epoch count."""
    name: str
    raw: str
    data_root: str
    run: str
    synth_classes: int = 16
    synth_performers: int = 10
    synth_per_class: int = 2
    sets: tuple[str, ...] = ()
    linear_epochs: int = 100
    seed: int = 0


SIZES = {
    # ~1,000 files, ~10 minutes of pretraining on 2 cores: what a newcomer runs first.
    "small": DemoConfig("small", raw="raw/synthetic", data_root="data", run="runs/demo"),
    # 4x the files (20 performers, 4 replications) and ~4x the steps: about 40 minutes on 2 cores.
    "full": DemoConfig("full", raw="raw/synthetic-full", data_root="data-full", run="runs/demo-full",
                       synth_performers=20, synth_per_class=4,
                       sets=("schedule.epochs=90",)),
}


def _step(title: str) -> None:
    console.rule(f"[bold]{title}")


def _pretrain(cfg: DemoConfig, data_dir: Path) -> None:
    """Pretrain in a child process (its own progress bar; resumes by itself)."""
    cmd = [sys.executable, "-m", "slim.train.cli", "pretrain", "--data", str(data_dir),
           "--benchmark", "xsub", "--preset", "cpu-demo", "--out", cfg.run]
    for s in cfg.sets:
        cmd += ["--set", s]
    console.print("[dim]$ " + " ".join(["slim-train"] + cmd[3:]))
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"pretraining failed (exit {proc.returncode}); re-run `make demo` to resume it")


def run_demo(cfg: DemoConfig) -> dict:
    from slim.eval import api
    from slim.ingest.run import ingest
    from slim.ingest.synth import SynthConfig, generate

    t0 = time.perf_counter()
    timings = {}

    _step(f"1/4 synthetic raw files -> {cfg.raw}")
    t = time.perf_counter()
    summary = generate(Path(cfg.raw), SynthConfig(classes=cfg.synth_classes, performers=cfg.synth_performers,
                                                  per_class=cfg.synth_per_class, seed=cfg.seed))
    console.print(f"{summary['files']} files, {summary['num_classes']} classes "
                  f"({summary.get('written', 0)} written, {summary.get('unchanged', 0)} unchanged)")
    timings["synth_s"] = time.perf_counter() - t

    _step(f"2/4 ingest -> {cfg.data_root}/synthetic")
    t = time.perf_counter()
    data_dir = ingest("synthetic", [Path(cfg.raw)], Path(cfg.data_root), workers=2, progress=True)
    timings["ingest_s"] = time.perf_counter() - t

    _step(f"3/4 pretrain (preset cpu-demo) -> {cfg.run}")
    t = time.perf_counter()
    _pretrain(cfg, data_dir)
    timings["pretrain_s"] = time.perf_counter() - t

    _step("4/4 evaluate: retrieval k=1 and linear, pretrained vs random encoder")
    t = time.perf_counter()
    results = {}
    for label, enc in (("pretrained", "trained"), ("random", "random:0")):
        r = api.retrieval(cfg.run, data_dir=str(data_dir), benchmark="xsub", ks=(1,), encoder=enc, progress=True)
        lin = api.linear(cfg.run, data_dir=str(data_dir), benchmark="xsub", encoder=enc,
                         epochs=cfg.linear_epochs, progress=True)
        results[label] = {"retrieval_k1": round(float(r["metrics"]["top1_k1"]), 2),
                          "linear": round(float(lin["metrics"]["top1"]), 2),
                          "files": {"retrieval": r["path"], "linear": lin["path"]}}
    timings["eval_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0

    out = {
        "pretrained": {k: results["pretrained"][k] for k in ("retrieval_k1", "linear")},
        "random": {k: results["random"][k] for k in ("retrieval_k1", "linear")},
        "margin": {k: round(results["pretrained"][k] - results["random"][k], 2)
                   for k in ("retrieval_k1", "linear")},
        "dataset": "synthetic", "benchmark": "xsub", "size": cfg.name,
        "selection": "val", "units": "top-1 accuracy, percent",
        "data": str(data_dir), "run": cfg.run,
        "result_files": {k: v["files"] for k, v in results.items()},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    path = Path(cfg.run) / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp, path)
    print_summary(out)
    console.print(f"[dim]wrote {path}", soft_wrap=True)
    return out


def print_summary(s: dict) -> None:
    console.print(f"[italic]SLiM demo: synthetic X-Sub ({s['size']}), top-1 %, selection on a "
                  "validation split[/]", soft_wrap=True)  # not wrapped into the narrow table
    table = Table()
    table.add_column("encoder")
    table.add_column("retrieval k=1", justify="right")
    table.add_column("linear", justify="right")
    for name in ("pretrained", "random"):
        table.add_row(name, f"{s[name]['retrieval_k1']:.1f}", f"{s[name]['linear']:.1f}")
    table.add_row("[bold]margin", f"[bold]{s['margin']['retrieval_k1']:+.1f}", f"[bold]{s['margin']['linear']:+.1f}")
    console.print(table)
    t = s["timings_s"]
    console.print(f"time: synth {t['synth_s']:.0f} s, ingest {t['ingest_s']:.0f} s, "
                  f"pretrain {t['pretrain_s']:.0f} s, eval {t['eval_s']:.0f} s, total {t['total_s'] / 60:.1f} min")
