"""Small-scale ablations on the synthetic dataset (`make bench ONLY=ablations`), with the
same code paths as the real recipe and only config switches:

- semantic tube masking vs random token masking (`pipeline.masking`),
- skeleton-aware augmentations vs none (`pipeline.augment`),
- MFM only vs GLCL only vs both (`model.glcl_weight`, `model.mfm_weight`).

Each variant pretrains the cpu-demo preset for `--epochs` x 20 steps (same seed), then
evaluates retrieval k=1 and linear accuracy on synthetic X-Sub, next to a random encoder
of the same architecture. Figures go to bench/results.json under `ablations`.
Expect about 5 minutes per variant on 2 CPU cores at the default 12 epochs.

`--real` (`make bench ONLY=ablations BENCH_ARGS=--real`) is the real-data mode (issue 13):
NW-UCLA ingested with `--view full`, the `cpu-real` preset shortened to `--steps` steps
(default 150) and one config switch per variant (REAL_VARIANTS), each scored on
validation only (benchmarks/realval.py: view 1 against view 2 of the training views;
view 3, the X-View test view, is never read), next to the random encoder of the same
architecture. Figures go to bench/results.json under `ablations_nwucla` and a table to
bench/ablations_nwucla.md. Variants pretrain on `--jobs` lanes at once (default: one per
CPU core), each with cores // jobs torch threads, as the NW-UCLA benchmark's seeds do;
about 1.7 minutes per variant and lane at 150 steps. The 1,200-step sweep of the README:
`--steps 1200 --real-only cpu-real koleo_0.3 koleo_0.03 lr_2e-3 lr_5e-4 teacher_momentum_0.99`.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VARIANTS = {
    "full": (),
    "random_masking": ("pipeline.masking=random",),
    "no_augmentation": ("pipeline.augment=false",),
    "mfm_only": ("model.glcl_weight=0",),
    "glcl_only": ("model.mfm_weight=0",),
}


#: Real-data variants: what issue 13's diagnosis pointed at, one switch each from cpu-real.
REAL_VARIANTS = {
    "cpu-real": (),
    "sinkhorn_centering": ("model.centering=sinkhorn",),
    "no_head_batchnorm": ("model.head.batchnorm=false",),
    "absolute_coordinates": ("model.encoder.root_relative=false",),
    "full_rotation": ("pipeline.rot_y_deg=180.0", "pipeline.rot_xz_deg=30.0"),
    "no_augmentation": ("pipeline.augment=false",),
    "random_masking": ("pipeline.masking=random",),
    "mfm_only": ("model.glcl_weight=0",),
    "glcl_only": ("model.mfm_weight=0",),
    # the knobs tried on whole 1,200-step schedules (README "1,200 steps, and what else was tried")
    "koleo_0.3": ("model.koleo_weight=0.3",),
    "koleo_0.03": ("model.koleo_weight=0.03",),
    "lr_2e-3": ("optim.base_lr=0.002",),
    "lr_5e-4": ("optim.base_lr=0.0005",),
    "teacher_momentum_0.99": ("schedule.momentum_teacher=0.99",),
}
#: The variants a plain `--real` run scores (the 150-step table of the README).
REAL_DEFAULT = tuple(REAL_VARIANTS)[:9]


def pretrain_real_variants(data: Path, out: Path, names: list[str], steps: int, seed: int,
                           jobs: int | None = None) -> dict[str, Path]:
    """Pretrain (or resume) each named REAL_VARIANTS entry from cpu-real shortened to
    `steps`, on `jobs` lanes at once (None: one per core, at most one per variant), each
    with cores // jobs torch threads; {name: run folder}. RuntimeError when one fails."""
    from benchmarks.nwucla import default_jobs, lane_threads, pretrain_sets, run_pretraining
    jobs = jobs or default_jobs(len(names))
    threads = [f"run.threads={lane_threads(jobs)}"] if jobs > 1 else []
    runs = {name: out / f"{name}-{steps}steps-seed{seed}" for name in names}
    with ThreadPoolExecutor(max_workers=jobs) as lanes:
        done = [lanes.submit(run_pretraining, data, runs[name], "cpu-real",
                             [f"run.seed={seed}", *pretrain_sets("cpu-real", steps), *REAL_VARIANTS[name], *threads],
                             lambda _: None) for name in names]
        for f in done:
            f.result()
    return runs


def real_table(figures: dict) -> str:
    """The real-data ablation figures as a Markdown table."""
    rows = [f"NW-UCLA X-View, validation only (view 1 vs view 2 of the training views), cpu-real "
            f"shortened to {figures['steps']} steps, seed {figures['seed']}; top-1 %", "",
            "| variant | switch | val retrieval k=1 | val linear |", "|---|---|---:|---:|"]
    for name in [*figures["variants"], "random_encoder"]:
        sw = ", ".join(f"`{s}`" for s in REAL_VARIANTS.get(name, ())) or ("-" if name != "random_encoder"
                                                                           else "no pretraining")
        rows.append(f"| {name} | {sw} | {figures[name + '.val_knn']:.1f} | {figures[name + '.val_linear']:.1f} |")
    return "\n".join(rows) + "\n"


def main_real(args) -> None:
    """The real-data mode (module docstring)."""
    from benchmarks.common import console, record, table_path
    from benchmarks.nwucla import default_raw
    from benchmarks.realval import validation_scores
    from slim.eval.target import resolve_target
    from slim.ingest.run import ingest

    raw = Path(args.nwucla) if args.nwucla else default_raw()
    if raw is None or not raw.exists():
        print("error: NW-UCLA not found\nhint: pass --nwucla PATH (the all_sqe folder or all_sqe.zip)",
              file=sys.stderr)
        raise SystemExit(2)
    out = Path(args.runs)
    data = ingest("nwucla", raw, out / "data-view-full", workers=2, progress=False, view="full")
    figures = {"steps": args.steps, "seed": args.seed, "variants": list(args.real_only)}
    console.print(f"[bold]ablations[/] {', '.join(args.real_only)}: pretraining -> {out}")
    runs = pretrain_real_variants(data, out, list(args.real_only), args.steps, args.seed, args.jobs)
    for name in args.real_only:
        run = runs[name]
        t = resolve_target(run, None, data, "xview")
        for k, v in validation_scores(t.encoder, data, t.eval_len).items():
            figures[f"{name}.{k}"] = v
        if name == args.real_only[0]:
            r = resolve_target(run, f"random:{args.seed}", data, "xview")
            for k, v in validation_scores(r.encoder, data, r.eval_len).items():
                figures[f"random_encoder.{k}"] = v
        console.print({k: v for k, v in figures.items() if k.startswith(name + ".")})
    record("ablations_nwucla", figures)
    md = real_table(figures)
    path = table_path("ablations_nwucla")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(md)
    os.replace(tmp, path)
    print(md)


def _pretrain(data: Path, out: Path, sets: tuple[str, ...], epochs: int) -> None:
    cmd = [sys.executable, "-m", "slim.train.cli", "pretrain", "--data", str(data), "--benchmark", "xsub",
           "--preset", "cpu-demo", "--out", str(out), "--set", f"schedule.epochs={epochs}"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"pretraining {out} failed (exit {proc.returncode})")


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/synthetic", help="ingested synthetic dataset (make ingest DATASET=synthetic)")
    ap.add_argument("--runs", default="runs/ablations")
    ap.add_argument("--epochs", type=int, default=12, help="epochs of 20 steps per variant")
    ap.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--real", action="store_true", help="the real-data mode: NW-UCLA, validation only")
    ap.add_argument("--nwucla", default=None, help="--real: NW-UCLA all_sqe folder or zip (default as ONLY=nwucla)")
    ap.add_argument("--steps", type=int, default=150, help="--real: pretraining steps per variant")
    ap.add_argument("--seed", type=int, default=0, help="--real: run seed")
    ap.add_argument("--real-only", nargs="*", choices=list(REAL_VARIANTS), default=list(REAL_DEFAULT))
    ap.add_argument("--jobs", type=int, default=None, help="--real: variants pretrained at once (default: one per core)")
    args = ap.parse_args(argv)
    if args.real:
        if args.runs == "runs/ablations":
            args.runs = "runs/ablations-nwucla"
        main_real(args)
        return

    from benchmarks.common import console, record
    from slim.eval import api

    data = Path(args.data)
    if not (data / "manifest.parquet").is_file():
        raise SystemExit(f"{data} is not an ingested dataset: run `make ingest DATASET=synthetic` first")
    figures = {"epochs": args.epochs, "steps": args.epochs * 20}
    for name in args.only:
        out = Path(args.runs) / name
        console.print(f"[bold]ablation {name}[/]: pretraining -> {out}")
        _pretrain(data, out, VARIANTS[name], args.epochs)
        r = api.retrieval(str(out), data_dir=str(data), benchmark="xsub", ks=(1,))
        lin = api.linear(str(out), data_dir=str(data), benchmark="xsub")
        figures[f"{name}.retrieval_k1"] = round(float(r["metrics"]["top1_k1"]), 2)
        figures[f"{name}.linear"] = round(float(lin["metrics"]["top1"]), 2)
        if name == "full":
            r = api.retrieval(str(out), data_dir=str(data), benchmark="xsub", ks=(1,), encoder="random:0")
            lin = api.linear(str(out), data_dir=str(data), benchmark="xsub", encoder="random:0")
            figures["random_encoder.retrieval_k1"] = round(float(r["metrics"]["top1_k1"]), 2)
            figures["random_encoder.linear"] = round(float(lin["metrics"]["top1"]), 2)
    record("ablations", figures)


if __name__ == "__main__":
    main(sys.argv[1:])
