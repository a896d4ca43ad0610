"""The validation curve of a real-data pretraining run (issue 13: "track kNN on a validation
part during pretraining: when does it peak"), `python -m benchmarks.realcurve`.

Pretrains the `cpu-real` preset on NW-UCLA X-View for `--steps` steps (the preset's
schedule stretched to that length, as `benchmarks/nwucla.py --steps` does) keeping a
checkpoint every `--every` steps, then scores the teacher encoder of every checkpoint on
validation only (benchmarks/realval.py: view 1 against view 2 of the training views; view
3, the X-View test view, is never read), beside the random encoder of the same
architecture (step 0), for each pooling in `--pools`. `--student` scores the student
encoder too. Re-running the same command resumes the pretraining and evaluates only the
checkpoints not yet in `<run>/curve.json`. The table goes to `<run>/curve.md`.

    python -m benchmarks.realcurve --steps 900 --every 100
    python -m benchmarks.realcurve --steps 300 --every 50 --set pipeline.mask_ratio=[0.3,0.7]

About 1 s per pretraining step and 10 s per evaluated checkpoint and pooling on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def pretrain(data: Path, run: Path, steps: int, every: int, seed: int, sets: list[str]) -> None:
    """Run (or resume) `slim-train pretrain --preset cpu-real` with every checkpoint kept."""
    from benchmarks.nwucla import pretrain_sets, run_pretraining
    keep = steps // every + 2
    run_pretraining(data, run, "cpu-real",
                    [f"run.seed={seed}", f"checkpoint.every_steps={every}", f"checkpoint.keep_last={keep}"]
                    + pretrain_sets("cpu-real", steps) + list(sets), log=lambda _: None)


def checkpoint_encoders(path: Path):
    """{"teacher": Encoder, "student": Encoder} of one pretraining checkpoint file."""
    from slim.model.slim import SLiM
    from slim.train.checkpoint import load_checkpoint, load_model_state
    from slim.train.config import from_toml_text
    payload = load_checkpoint(path)
    model = SLiM(from_toml_text(payload["config"]).model)
    load_model_state(model, payload["model"], path)
    return {"teacher": model.teacher.eval(), "student": model.student.eval()}


def curve_table(curve: dict) -> str:
    """The curve as a Markdown table: one row per step, val k=1 / val linear per pooling."""
    pools = curve["pools"]
    head = "| step | encoder | " + " | ".join(f"{p} val k=1 | {p} val linear" for p in pools) + " |"
    rows = [f"Validation curve of {curve['run']} ({curve['steps']} steps, seed {curve['seed']}; view 1 vs "
            "view 2 of the training views, never view 3); top-1 %", "", head,
            "|---:|---|" + "---:|---:|" * len(pools)]
    for key in sorted(curve["points"], key=lambda k: (int(k.split(":")[0]), k)):
        step, which = key.split(":")
        p = curve["points"][key]
        rows.append(f"| {step} | {which} | " + " | ".join(
            f"{p[f'{q}.val_knn']:.1f} | {p[f'{q}.val_linear']:.1f}" for q in pools) + " |")
    return "\n".join(rows) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nwucla", default=None, help="NW-UCLA all_sqe folder or zip (default as ONLY=nwucla)")
    ap.add_argument("--data", default=None, help="an NW-UCLA folder already ingested with --view full")
    ap.add_argument("--runs", default="runs/realcurve", help="folder of the data and the runs")
    ap.add_argument("--name", default=None, help="run folder name (default cpu-real-<steps>steps-seed<seed>)")
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--every", type=int, default=100, help="steps between evaluated checkpoints")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="a config override KEY=VALUE")
    ap.add_argument("--pools", default="cls+mean", help="comma-separated poolings (slim.model.encoder.POOLS)")
    ap.add_argument("--student", action="store_true", help="score the student encoder as well")
    args = ap.parse_args(argv)

    from benchmarks.realval import validation_scores
    from slim.eval.target import resolve_target
    from slim.model.encoder import POOLS
    from slim.train.checkpoint import list_checkpoints

    pools = [p for p in args.pools.split(",") if p]
    bad = [p for p in pools if p not in POOLS]
    if bad:
        print(f"error: unknown pooling {bad}\nhint: use some of {', '.join(POOLS)}", file=sys.stderr)
        raise SystemExit(2)
    runs = Path(args.runs)
    if args.data:
        data = Path(args.data)
    else:
        from benchmarks.nwucla import default_raw
        from slim.ingest.run import ingest
        raw = Path(args.nwucla) if args.nwucla else default_raw()
        if raw is None or not raw.exists():
            print("error: NW-UCLA not found\nhint: pass --nwucla PATH (the all_sqe folder or all_sqe.zip) "
                  "or --data DIR (ingested with --view full)", file=sys.stderr)
            raise SystemExit(2)
        data = ingest("nwucla", raw, runs / "data-view-full", workers=2, progress=False, view="full")
    run = runs / (args.name or f"cpu-real-{args.steps}steps-seed{args.seed}")
    pretrain(data, run, args.steps, args.every, args.seed, args.sets)

    out = run / "curve.json"
    curve = json.loads(out.read_text()) if out.is_file() else {"points": {}}
    curve.update({"run": run.name, "steps": args.steps, "seed": args.seed, "sets": args.sets,
                  "pools": sorted(set(curve.get("pools", [])) | set(pools), key=POOLS.index)})

    def score(key: str, encoder, eval_len: int) -> None:
        point = curve["points"].setdefault(key, {})
        for pool in pools:
            if f"{pool}.val_knn" in point:
                continue
            for k, v in validation_scores(encoder, data, eval_len, pool=pool).items():
                point[f"{pool}.{k}"] = v
        print(key, point, flush=True)
        _write(out, json.dumps(curve, indent=1, sort_keys=True))

    r = resolve_target(run, f"random:{args.seed}", data, "xview")
    score("0:random", r.encoder, r.eval_len)
    for step, path in list_checkpoints(run):
        if step % args.every and step != args.steps:
            continue
        encoders = checkpoint_encoders(path)
        for which in ("teacher", "student") if args.student else ("teacher",):
            score(f"{step}:{which}", encoders[which], r.eval_len)
    _write(run / "curve.md", curve_table(curve))
    print(curve_table(curve))


if __name__ == "__main__":
    main(sys.argv[1:])
