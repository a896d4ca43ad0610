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

Seeds run on `--jobs` lanes at once (default: one per CPU core, at most one per seed),
each pretraining with `run.threads = cores // jobs`: this encoder is small enough that two
1-thread processes do nearly twice the work of one 2-thread process. The supervised
bound takes the lane that frees up after the last pretraining starts; evaluation runs
afterwards with all cores.

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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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


def run_pretraining(data: Path, run: Path, preset: str, sets: list[str], log=print) -> None:
    """Run (or resume) `slim-train pretrain --benchmark xview --preset PRESET --set S...`
    into `run` as a subprocess; RuntimeError when it fails (re-running resumes it)."""
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


def supervised_budget_epochs(total_steps: int, global_batch: int, fit_size: int, views: float) -> int:
    """Epochs of supervised training with the student's encoder work of pretraining:
    pretraining passes `views` global-view equivalents of each sample through the
    student per step (forward and backward; the teacher's forward-only passes are not
    counted), supervised training one. At least 1."""
    return max(1, math.ceil(total_steps * global_batch * views / fit_size))


def views_per_sample(cfg) -> float:
    """Student passes per sample and pretraining step in global-view equivalents (frames
    over the global length): 2 global views plus, per anchor, the local crops
    (cpu-real: 2 + 2 x (16 + 8) / 32 = 3.5)."""
    p = cfg.pipeline
    return 2 + 2 * sum(n * t / p.global_len for n, t in zip(p.local_counts, p.local_lens))


#: The supervised bound's learning rate grid (AdamW peak, full fine-tuning from random
#: init, drop-path 0.1): 1e-3 was chosen on the validation part (at 40 epochs: 71.6 % on
#: validation against 53.9 % for the fine-tuning default 3e-4 at 11); the epoch is chosen
#: on the same validation part, never on the test view. Pass more rates to choose among.
SUPERVISED_LRS = (1e-3,)


def run_name(preset: str, view: str, seed: int, steps: int | None) -> str:
    """The run folder name of one seed under <out>/runs."""
    name = f"nwucla-{preset}" + ("" if view == "none" else f"-view-{view}") + ("" if seed == 0 else f"-seed{seed}")
    return name if steps is None else f"{name}-{steps}steps"


def pretrain_seed(data: Path, run_dir: Path, preset: str, seed: int, steps: int | None, threads: int,
                  log=print) -> float:
    """Pretrain (or resume) one seed into `run_dir` with `threads` torch threads (0 = torch's
    default); returns the wall seconds it took."""
    t = time.perf_counter()
    sets = pretrain_sets(preset, steps) + [f"run.seed={seed}"] + ([f"run.threads={threads}"] if threads else [])
    run_pretraining(data, run_dir, preset, sets, log)
    return time.perf_counter() - t


def supervised_bound(data: Path, card: dict, run_dir: Path, seed: int,
                     supervised_lrs: tuple[float, ...] = SUPERVISED_LRS) -> dict:
    """Train the supervised bound from the seed's random init (step 4 of the module
    docstring) with the budget of the pretraining run in `run_dir`; its figures."""
    from slim.eval import api

    t = time.perf_counter()
    info, cfg = read_run(run_dir)
    n_train = card["benchmarks"][BENCHMARK]["train"]
    fit = n_train - round(0.1 * n_train)  # FinetuneConfig.val_fraction = 0.1 is carved off
    epochs = supervised_budget_epochs(int(info["total_steps"]), cfg.data.global_batch, fit, views_per_sample(cfg))
    best = None
    for lr in supervised_lrs:
        sup = api.finetune(run_dir, data_dir=str(data), benchmark=BENCHMARK, encoder=f"random:{seed}",
                           seed=seed, epochs=epochs, batch_size=cfg.data.global_batch, lr=lr,
                           warmup_epochs=min(5, max(epochs // 10, 0)), drop_path=0.1,
                           select_on="val", device="cpu", progress=False)
        m = sup["metrics"]
        if best is None or m.get("val_top1", 0) > best[1].get("val_top1", 0):
            best = (lr, m)
    lr, m = best
    return {"supervised_top1": m["top1"], "supervised_val_top1": m.get("val_top1"),
            "supervised_epochs": epochs, "supervised_best_epoch": m.get("epoch"), "supervised_lr": lr,
            "supervised_s": round(time.perf_counter() - t, 1)}


def evaluate_seed(data: Path, out: Path, run_dir: Path, seed: int, linear_epochs: int,
                  pool: str = "cls+mean") -> dict:
    """Retrieval k=1 and the linear probe of the pretrained run and of random init of the
    same seed (random:SEED is exactly the run's starting point); the seed's figures."""
    from slim.eval import api

    t = time.perf_counter()
    info, cfg = read_run(run_dir)
    res: dict = {}
    for label, enc in (("pretrained", "trained"), ("random", f"random:{seed}")):
        r = api.retrieval(run_dir, data_dir=str(data), benchmark=BENCHMARK, ks=(1,), encoder=enc, pool=pool)
        lin = api.linear(run_dir, data_dir=str(data), benchmark=BENCHMARK, encoder=enc,
                         epochs=linear_epochs, select_on="val", pool=pool)
        res[label] = {"retrieval_k1": r["metrics"]["top1"], "linear": lin["metrics"]["top1"],
                      "linear_val": lin["metrics"].get("val_top1"), "eval_len": r.get("eval_len")}
    f = {"seed": seed, "pretrain_steps": int(info["total_steps"]), "global_batch": cfg.data.global_batch,
         "eval_len": res["pretrained"]["eval_len"],
         "pretrained_retrieval_k1": res["pretrained"]["retrieval_k1"],
         "random_retrieval_k1": res["random"]["retrieval_k1"],
         "pretrained_linear": res["pretrained"]["linear"], "random_linear": res["random"]["linear"],
         "pretrained_linear_val": res["pretrained"]["linear_val"], "random_linear_val": res["random"]["linear_val"],
         "run": f"{run_dir.relative_to(out)} (under --out)" if run_dir.is_relative_to(out) else str(run_dir)}
    f["margin_retrieval_k1"] = round(f["pretrained_retrieval_k1"] - f["random_retrieval_k1"], 2)
    f["margin_linear"] = round(f["pretrained_linear"] - f["random_linear"], 2)
    f["eval_s"] = round(time.perf_counter() - t, 1)
    return f


def read_run(run_dir: Path) -> tuple[dict, object]:
    """(run.json as a dict, the resolved config) of a pretraining run folder."""
    from slim.train.config import from_toml_text
    return (json.loads((run_dir / "run.json").read_text()),
            from_toml_text((run_dir / "config.toml").read_text()))


def default_jobs(n_seeds: int) -> int:
    """One lane per CPU core, at most one per seed."""
    return max(1, min(n_seeds, os.cpu_count() or 1))


def lane_threads(jobs: int) -> int:
    """torch threads per lane: cores // jobs, or 0 (torch's default) for a single lane."""
    return max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else 0


#: Figures averaged over seeds (mean, sample standard deviation, min, max).
SEED_KEYS = ("pretrained_retrieval_k1", "random_retrieval_k1", "pretrained_linear", "random_linear",
             "margin_retrieval_k1", "margin_linear", "supervised_top1")


def summarise(per_seed: list[dict]) -> dict:
    """{key: mean, key_std: sample std (0 for one seed), key_min, key_max} over the seeds
    for SEED_KEYS present in every seed's figures."""
    out = {}
    for k in SEED_KEYS:
        vals = [float(f[k]) for f in per_seed if f.get(k) is not None]
        if len(vals) != len(per_seed) or not vals:
            continue
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        out.update({k: round(mean, 2), f"{k}_std": round(std, 2), f"{k}_min": round(min(vals), 2),
                    f"{k}_max": round(max(vals), 2)})
    return out


def run(raw: Path, out: Path, preset: str = "cpu-demo", steps: int | None = None,
        linear_epochs: int = 100, workers: int = 2, log=print, view: str = "none",
        seeds: tuple[int, ...] = (0,), supervised: str = "first", pool: str = "cls+mean",
        jobs: int | None = None) -> dict:
    """Steps 1-4 of the module docstring for each seed; returns the figures (percent,
    seconds): the mean over seeds under the plain keys, `<key>_std` / `_min` / `_max`, and
    each seed's figures under "seeds". supervised: "first" (the bound is trained for the
    first seed only: it is the costliest part), "all" or "none". jobs: lanes run at once
    (None: default_jobs); each pretraining gets cores // jobs torch threads, the
    evaluation all of them."""
    import torch
    from slim.ingest.run import ingest

    t0 = time.perf_counter()
    # A view-normalised ingest (ingest --view) gets its own folder beside the plain one.
    data = ingest("nwucla", raw, out / ("data" if view == "none" else f"data-view-{view}"),
                  workers=workers, progress=False, view=view)
    card = json.loads((data / "card.json").read_text())
    ingest_s = time.perf_counter() - t0
    jobs = jobs or default_jobs(len(seeds))
    cores = os.cpu_count() or 1
    threads = lane_threads(jobs)
    runs = {seed: out / "runs" / run_name(preset, view, seed, steps) for seed in seeds}
    sup_seeds = [s for s in seeds if supervised == "all" or (supervised == "first" and s == seeds[0])]

    # Lanes: every pretraining first (FIFO), then the supervised bounds, each after its own seed's run.
    t1 = time.perf_counter()
    threads_before = torch.get_num_threads()
    lock = threading.Lock()

    def say(msg: str) -> None:
        with lock:
            log(msg)

    pretrain_s: dict[int, float] = {}
    sup: dict[int, dict] = {}
    if threads:
        torch.set_num_threads(threads)  # the in-process supervised bound shares the lanes
    try:
        with ThreadPoolExecutor(max_workers=jobs) as lanes:
            pre = {seed: lanes.submit(pretrain_seed, data, runs[seed], preset, seed, steps, threads, say)
                   for seed in seeds}

            def bound(seed: int) -> dict:
                pretrain_s[seed] = pre[seed].result()
                return supervised_bound(data, card, runs[seed], seed)
            bounds = {seed: lanes.submit(bound, seed) for seed in sup_seeds}
            for seed in seeds:
                pretrain_s[seed] = pre[seed].result()
            for seed in sup_seeds:
                sup[seed] = bounds[seed].result()
    finally:
        torch.set_num_threads(threads_before)
    lanes_s = time.perf_counter() - t1

    per_seed = []
    for seed in seeds:
        f = evaluate_seed(data, out, runs[seed], seed, linear_epochs, pool)
        f["pretrain_s"] = round(pretrain_s[seed], 1)
        f.update(sup.get(seed, {}))
        per_seed.append(f)
        log(json.dumps(f))
    first = per_seed[0]
    figures = {
        "dataset": "nwucla", "benchmark": BENCHMARK, "layout": card["layout"],
        "train_samples": card["benchmarks"][BENCHMARK]["train"],
        "test_samples": card["benchmarks"][BENCHMARK]["test"],
        "preset": preset, "view": view, "pretrain_steps": first["pretrain_steps"],
        "global_batch": first["global_batch"], "eval_len": first["eval_len"], "pool": pool,
        "short_run": steps is not None,
        "seeds": per_seed, "n_seeds": len(per_seed),
        **summarise(per_seed),
        "supervised_epochs": first.get("supervised_epochs"), "supervised_lr": first.get("supervised_lr"),
        "supervised_seeds": [f["seed"] for f in per_seed if "supervised_top1" in f],
        "jobs": jobs, "threads_per_job": threads or torch.get_num_threads(), "cores": cores,
        "ingest_s": round(ingest_s, 1), "lanes_s": round(lanes_s, 1),
        **{k: round(sum(f.get(k, 0.0) for f in per_seed), 1) for k in ("pretrain_s", "eval_s", "supervised_s")},
        "total_s": round(time.perf_counter() - t0, 1),
        "run": first["run"],
    }
    if "supervised_top1" not in figures and "supervised_top1" in first:  # the bound of the first seed only
        figures.update(supervised_top1=first["supervised_top1"], supervised_val_top1=first.get("supervised_val_top1"))
    return figures


def _pm(f: dict, key: str) -> str:
    """"mean" or "mean ± std" (more than one seed) of a figure, one decimal."""
    if f.get(f"{key}_std") is not None and f.get("n_seeds", 1) > 1:
        return f"{f[key]:.1f} ± {f[key + '_std']:.1f}"
    return f"{f[key]:.1f}"


def table_markdown(f: dict) -> str:
    """The figures as the README's real-data table (Markdown)."""
    note = " (short harness check, not a result)" if f["short_run"] else ""
    n = f.get("n_seeds", 1)
    seeds = f", mean ± standard deviation over {n} seeds" if n > 1 else ""
    sup_seeds = f.get("supervised_seeds")
    one = f" (seed {sup_seeds[0]} only)" if sup_seeds and len(sup_seeds) == 1 and n > 1 else ""
    sup = (f"| supervised, same encoder and budget ({f['supervised_epochs']} epochs, epoch chosen on "
           f"validation){one} | - | {_pm(f, 'supervised_top1')} |") if f.get("supervised_top1") is not None else None
    rows = [
        f"NW-UCLA {f['benchmark']} ({f['train_samples']} train / {f['test_samples']} test, layout {f['layout']}), "
        f"preset {f['preset']}" + (f", ingest --view {f['view']}" if f.get('view', 'none') != 'none' else '')
        + f", {f['pretrain_steps']} pretraining steps x batch {f['global_batch']}"
        + (f", evaluated at {f['eval_len']} frames" if f.get("eval_len") else "")
        + (f", features {f['pool']}" if f.get("pool") else "") + f"{seeds}{note}",
        "",
        "| encoder | retrieval k=1 (%) | linear (%) |",
        "|---|---:|---:|",
        f"| random init | {_pm(f, 'random_retrieval_k1')} | {_pm(f, 'random_linear')} |",
        f"| SLiM pretrained | {_pm(f, 'pretrained_retrieval_k1')} | {_pm(f, 'pretrained_linear')} |",
        f"| margin (pretrained - random, per seed) | {_pm(f, 'margin_retrieval_k1')} | {_pm(f, 'margin_linear')} |"
        if "margin_retrieval_k1" in f else None,
        sup,
        "",
        f"Time on this machine ({f.get('cores', '?')} cores): ingest {f['ingest_s']:.0f} s, "
        + (f"pretraining and the supervised bound on {f['jobs']} lanes of {f['threads_per_job']} thread(s) "
           f"{f['lanes_s']:.0f} s (pretraining {f['pretrain_s']:.0f} s and supervised "
           f"{f.get('supervised_s', 0):.0f} s summed over lanes), "
           if f.get("lanes_s") is not None else
           f"pretrain {f['pretrain_s']:.0f} s, supervised {f.get('supervised_s', 0):.0f} s, ")
        + f"evaluation {f['eval_s']:.0f} s, total {f['total_s'] / 60:.1f} min.",
        "",
    ]
    return "\n".join(r for r in rows if r is not None)


def main(argv: list[str]) -> None:
    from benchmarks.common import record, results_path, table_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nwucla", type=Path, default=None,
                    help=f"the NW-UCLA JSON folder or all_sqe.zip (default: $NWUCLA, else {DEFAULT_RAW})")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "nwucla", help="data and run folders")
    ap.add_argument("--preset", default="cpu-demo", help="pretraining preset (slim-train pretrain --preset)")
    ap.add_argument("--steps", type=int, default=None, help="about this many pretraining steps (harness check)")
    ap.add_argument("--view", default="none", choices=("none", "yaw", "full"),
                    help="ingest's body-centred view normalisation (slim-ingest --view)")
    ap.add_argument("--linear-epochs", type=int, default=100)
    ap.add_argument("--seeds", default="0",
                    help="comma-separated run seeds (e.g. 0,1,2): one pretraining, random baseline and "
                         "supervised bound per seed; figures are mean ± standard deviation")
    ap.add_argument("--supervised", default="first", choices=("first", "all", "none"),
                    help="train the supervised bound for the first seed only (default), every seed, or not")
    ap.add_argument("--pool", default="cls+mean", choices=("cls", "mean", "cls+mean"),
                    help="frozen features for retrieval and linear, the same for the random encoder "
                         "(slim-eval --pool; cpu-real: cls, chosen on validation, README issue 13)")
    ap.add_argument("--jobs", type=int, default=None,
                    help="seeds pretrained at once, each with cores // jobs threads (default: one per core, "
                         "at most one per seed)")
    ap.add_argument("--results", type=Path, default=results_path())
    args = ap.parse_args(argv)
    raw = args.nwucla or default_raw()
    if raw is None or not raw.exists():
        print(f"error: NW-UCLA not found{f' at {raw}' if raw else ''}\nhint: pass NWUCLA=PATH (make) or "
              "--nwucla PATH: the all_sqe folder or all_sqe.zip of CTR-GCN's data instructions", file=sys.stderr)
        raise SystemExit(2)
    try:
        seeds = tuple(int(x) for x in args.seeds.split(",") if x.strip())
    except ValueError:
        seeds = ()
    if not seeds:
        print(f"error: --seeds {args.seeds!r} is not a list of integers\nhint: pass e.g. --seeds 0,1,2",
              file=sys.stderr)
        raise SystemExit(2)
    figures = run(raw, args.out, args.preset, args.steps, args.linear_epochs, view=args.view, seeds=seeds,
                  supervised=args.supervised, pool=args.pool, jobs=args.jobs)
    record("nwucla", figures, args.results)
    md = table_markdown(figures)
    path = table_path("nwucla", args.results)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(md)
    os.replace(tmp, path)
    print(md)


if __name__ == "__main__":
    main(sys.argv[1:])
