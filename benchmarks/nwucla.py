"""The real-data benchmark (`make bench ONLY=nwucla [NWUCLA=PATH]`): NW-UCLA, Kinect v1,
cross-view (train views 1 and 2, test view 3), on a 2-core CPU.

1. ingest the JSON set (folder or the zip users download) in its native 20-joint layout;
2. pretrain a CPU preset (`--preset`, default cpu-demo) on the xview training views;
3. evaluate on xview, each next to the same architecture at random initialisation
   (`random:0`, which with the presets' run.seed 0 is exactly the pretrained run's
   starting point, so the margin is what pretraining added):
   - retrieval k=1 (cosine k-NN of test on train features; nothing tuned),
   - linear probe on frozen features (learning rate and epoch chosen on a validation
     part carved from the training views, never on the test view);
4. a supervised upper bound: the same encoder architecture trained from random init with
   labels on the training views, for the same budget as pretraining (the same number of
   samples seen: steps x global batch, at the same batch size), its epoch chosen on the
   same kind of validation part.

Figures go to bench/results.json under `nwucla` and a Markdown table to
bench/nwucla.md. `--steps N` shortens pretraining (and with it the supervised budget) to
check the harness quickly; such a run says so in its figures.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where the workplace keeps the archive (../shared beside the checkout).
DEFAULT_RAW = ROOT.parent / "shared" / "datasets" / "nwucla" / "all_sqe.zip"
BENCHMARK = "xview"


def default_raw() -> Path | None:
    """$NWUCLA, else ../shared/datasets/nwucla/all_sqe.zip when it exists, else None."""
    if os.environ.get("NWUCLA"):
        return Path(os.environ["NWUCLA"])
    return DEFAULT_RAW if DEFAULT_RAW.is_file() else None


def pretrain_sets(preset: str, steps: int | None) -> list[str]:
    """--set overrides that cut the preset's schedule to about `steps` steps, keeping
    its number of epochs (so warm-ups keep their shape): epoch_steps = ceil(steps / epochs)."""
    if steps is None:
        return []
    from slim.train.config import resolve
    epochs = resolve(preset).schedule.epochs
    return [f"schedule.epoch_steps={max(1, math.ceil(steps / epochs))}"]


def _pretrain(data: Path, run: Path, preset: str, sets: list[str], log) -> None:
    cmd = [sys.executable, "-m", "slim.train.cli", "pretrain", "--data", str(data), "--benchmark", BENCHMARK,
           "--preset", preset, "--out", str(run)]
    for s in sets:
        cmd += ["--set", s]
    log("$ slim-train " + " ".join(cmd[3:]))
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"pretraining {run} failed (exit {proc.returncode}); re-run to resume it")


def supervised_epochs(total_steps: int, global_batch: int, fit_size: int) -> int:
    """Epochs of supervised training that see as many samples as pretraining did
    (steps x global batch), at least 1."""
    return max(1, math.ceil(total_steps * global_batch / fit_size))


def run(raw: Path, out: Path, preset: str = "cpu-demo", steps: int | None = None,
        linear_epochs: int = 100, workers: int = 2, log=print, view: str = "none") -> dict:
    """Steps 1-4 of the module docstring; returns the figures (percent, seconds)."""
    from slim.eval import api
    from slim.ingest.run import ingest
    from slim.train.config import from_toml_text

    t0 = time.perf_counter()
    timings = {}
    # A view-normalised ingest (ingest --view) gets its own folder beside the plain one.
    data = ingest("nwucla", raw, out / ("data" if view == "none" else f"data-view-{view}"),
                  workers=workers, progress=False, view=view)
    card = json.loads((data / "card.json").read_text())
    timings["ingest_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    name = f"nwucla-{preset}" + ("" if view == "none" else f"-view-{view}")
    run_dir = out / "runs" / (name if steps is None else f"{name}-{steps}steps")
    _pretrain(data, run_dir, preset, pretrain_sets(preset, steps), log)
    info = json.loads((run_dir / "run.json").read_text())
    cfg = from_toml_text((run_dir / "config.toml").read_text())
    timings["pretrain_s"] = time.perf_counter() - t

    t = time.perf_counter()
    res: dict = {}
    for label, enc in (("pretrained", "trained"), ("random", "random:0")):
        r = api.retrieval(run_dir, data_dir=str(data), benchmark=BENCHMARK, ks=(1,), encoder=enc)
        lin = api.linear(run_dir, data_dir=str(data), benchmark=BENCHMARK, encoder=enc,
                         epochs=linear_epochs, select_on="val")
        res[label] = {"retrieval_k1": r["metrics"]["top1"], "linear": lin["metrics"]["top1"],
                      "linear_val": lin["metrics"].get("val_top1"), "linear_lr": lin["metrics"].get("lr")}
    timings["eval_s"] = time.perf_counter() - t

    t = time.perf_counter()
    n_train = card["benchmarks"][BENCHMARK]["train"]
    fit = n_train - round(0.1 * n_train)  # FinetuneConfig.val_fraction = 0.1 is carved off
    epochs = supervised_epochs(int(info["total_steps"]), cfg.data.global_batch, fit)
    sup = api.finetune(run_dir, data_dir=str(data), benchmark=BENCHMARK, encoder="random:0",
                       epochs=epochs, batch_size=cfg.data.global_batch, warmup_epochs=min(5, max(epochs // 10, 0)),
                       select_on="val", device="cpu")
    timings["supervised_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0

    figures = {
        "dataset": "nwucla", "benchmark": BENCHMARK, "layout": card["layout"],
        "train_samples": n_train, "test_samples": card["benchmarks"][BENCHMARK]["test"],
        "preset": preset, "view": view, "pretrain_steps": int(info["total_steps"]), "global_batch": cfg.data.global_batch,
        "short_run": steps is not None,
        "pretrained_retrieval_k1": res["pretrained"]["retrieval_k1"],
        "random_retrieval_k1": res["random"]["retrieval_k1"],
        "pretrained_linear": res["pretrained"]["linear"], "random_linear": res["random"]["linear"],
        "pretrained_linear_val": res["pretrained"]["linear_val"], "random_linear_val": res["random"]["linear_val"],
        "supervised_top1": sup["metrics"]["top1"], "supervised_val_top1": sup["metrics"].get("val_top1"),
        "supervised_epochs": epochs, "supervised_best_epoch": sup["metrics"].get("epoch"),
        "margin_retrieval_k1": round(res["pretrained"]["retrieval_k1"] - res["random"]["retrieval_k1"], 2),
        "margin_linear": round(res["pretrained"]["linear"] - res["random"]["linear"], 2),
        **{k: round(v, 1) for k, v in timings.items()},
        "run": str(run_dir),
    }
    return figures


def table_markdown(f: dict) -> str:
    """The figures as the README's real-data table (Markdown)."""
    note = " (short harness check, not a result)" if f["short_run"] else ""
    return "\n".join([
        f"NW-UCLA {f['benchmark']} ({f['train_samples']} train / {f['test_samples']} test, layout {f['layout']}), "
        f"preset {f['preset']}" + (f", ingest --view {f['view']}" if f.get('view', 'none') != 'none' else '') + f", {f['pretrain_steps']} pretraining steps x batch {f['global_batch']}{note}",
        "",
        "| encoder | retrieval k=1 (%) | linear (%) |",
        "|---|---:|---:|",
        f"| random init | {f['random_retrieval_k1']:.1f} | {f['random_linear']:.1f} |",
        f"| SLiM pretrained | {f['pretrained_retrieval_k1']:.1f} | {f['pretrained_linear']:.1f} |",
        f"| supervised, same encoder and budget ({f['supervised_epochs']} epochs) | - | "
        f"{f['supervised_top1']:.1f} (fully trained) |",
        "",
        f"Time on this machine: ingest {f['ingest_s']:.0f} s, pretrain {f['pretrain_s']:.0f} s, "
        f"evaluation {f['eval_s']:.0f} s, supervised {f['supervised_s']:.0f} s, "
        f"total {f['total_s'] / 60:.1f} min.",
        "",
    ])


def main(argv: list[str]) -> None:
    from benchmarks.common import record, results_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nwucla", type=Path, default=None,
                    help=f"the NW-UCLA JSON folder or all_sqe.zip (default: $NWUCLA, else {DEFAULT_RAW})")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "nwucla", help="data and run folders")
    ap.add_argument("--preset", default="cpu-demo", help="pretraining preset (slim-train pretrain --preset)")
    ap.add_argument("--steps", type=int, default=None, help="about this many pretraining steps (harness check)")
    ap.add_argument("--view", default="none", choices=("none", "yaw", "full"),
                    help="ingest's body-centred view normalisation (slim-ingest --view)")
    ap.add_argument("--linear-epochs", type=int, default=100)
    ap.add_argument("--results", type=Path, default=results_path())
    args = ap.parse_args(argv)
    raw = args.nwucla or default_raw()
    if raw is None or not raw.exists():
        print(f"error: NW-UCLA not found{f' at {raw}' if raw else ''}\nhint: pass NWUCLA=PATH (make) or "
              "--nwucla PATH: the all_sqe folder or all_sqe.zip of CTR-GCN's data instructions", file=sys.stderr)
        raise SystemExit(2)
    figures = run(raw, args.out, args.preset, args.steps, args.linear_epochs, view=args.view)
    record("nwucla", figures, args.results)
    md = table_markdown(figures)
    path = args.results.parent / "nwucla.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(md)
    os.replace(tmp, path)
    print(md)


if __name__ == "__main__":
    main(sys.argv[1:])
