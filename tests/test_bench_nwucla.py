"""The real-data benchmark's own rules (benchmarks/nwucla.py), without running it: the
supervised budget equals pretraining's samples seen, a shortened run says so, and every
figure stands next to its random-init baseline."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks import nwucla  # noqa: E402


def test_supervised_budget_matches_pretraining_samples_seen():
    # cpu-demo: 420 steps x 32 = 13,440 samples; 918 fit samples -> 15 epochs (13,770)
    assert nwucla.supervised_epochs(420, 32, 918) == 15
    assert nwucla.supervised_epochs(1, 4, 1000) == 1


def test_supervised_budget_counts_the_students_views():
    """The bound sees as many global-view equivalents as pretraining's student: cpu-real
    passes 2 globals of 32 frames and, per anchor, a 16- and an 8-frame local (3.5)."""
    from slim.train.config import resolve
    cfg = resolve("cpu-real")
    assert nwucla.views_per_sample(cfg) == 3.5
    assert nwucla.views_per_sample(resolve("paper")) == 2 + 2 * 2 * (32 + 16 + 8) / 64
    assert nwucla.supervised_budget_epochs(450, 32, 918, 3.5) == 55   # 50,400 / 918 -> 55


def test_seeds_are_summarised_as_mean_and_spread():
    per = [{"pretrained_linear": 60.0, "random_linear": 50.0, "margin_linear": 10.0},
           {"pretrained_linear": 64.0, "random_linear": 52.0, "margin_linear": 12.0}]
    s = nwucla.summarise(per)
    assert s["pretrained_linear"] == 62.0 and s["pretrained_linear_min"] == 60.0
    assert abs(s["pretrained_linear_std"] - 2.83) < 0.01 and s["margin_linear"] == 11.0
    assert "pretrained_retrieval_k1" not in s          # only keys every seed has
    assert nwucla._pm({**s, "n_seeds": 2}, "margin_linear") == "11.0 ± 1.4"


def test_short_run_keeps_the_preset_epochs_and_says_so():
    assert nwucla.pretrain_sets("cpu-demo", None) == []
    assert nwucla.pretrain_sets("cpu-demo", 30) == ["schedule.epoch_steps=2"]  # 21 epochs x 2 = 42 steps
    f = {"benchmark": "xview", "train_samples": 1020, "test_samples": 464, "layout": "kinect_v1_20",
         "preset": "cpu-demo", "pretrain_steps": 42, "global_batch": 32, "short_run": True,
         "random_retrieval_k1": 45.0, "random_linear": 37.5, "pretrained_retrieval_k1": 45.0,
         "pretrained_linear": 37.1, "supervised_epochs": 2, "supervised_top1": 22.6,
         "ingest_s": 6, "pretrain_s": 414, "eval_s": 46, "supervised_s": 131, "total_s": 597}
    md = nwucla.table_markdown(f)
    assert "not a result" in md and "| random init | 45.0 | 37.5 |" in md
    assert "| SLiM pretrained | 45.0 | 37.1 |" in md and "22.6" in md
    assert "not a result" not in nwucla.table_markdown({**f, "short_run": False})


def test_table_names_the_view_normalisation_when_used():
    f = {"benchmark": "xview", "train_samples": 1020, "test_samples": 464, "layout": "kinect_v1_20",
         "preset": "cpu-real", "view": "full", "pretrain_steps": 300, "global_batch": 32,
         "short_run": False, "random_retrieval_k1": 53.0, "random_linear": 63.8,
         "pretrained_retrieval_k1": 56.0, "pretrained_linear": 60.3, "supervised_epochs": 10,
         "supervised_top1": 65.5, "ingest_s": 6, "pretrain_s": 414, "eval_s": 46,
         "supervised_s": 131, "total_s": 597}
    assert "ingest --view full" in nwucla.table_markdown(f)
    assert "--view" not in nwucla.table_markdown({**f, "view": "none"})


def test_table_names_the_pooled_features():
    """The pooling (--pool) is the same for both encoders and the table says which."""
    f = {"benchmark": "xview", "train_samples": 1020, "test_samples": 464, "layout": "kinect_v1_20",
         "preset": "cpu-real", "view": "full", "pretrain_steps": 600, "global_batch": 32, "pool": "cls",
         "short_run": False, "random_retrieval_k1": 53.0, "random_linear": 63.8,
         "pretrained_retrieval_k1": 56.0, "pretrained_linear": 60.3, "ingest_s": 6, "pretrain_s": 414,
         "eval_s": 46, "supervised_s": 131, "total_s": 597}
    assert ", features cls" in nwucla.table_markdown(f)
    assert "features" not in nwucla.table_markdown({k: v for k, v in f.items() if k != "pool"})


def test_curve_table_orders_steps_and_lists_every_pooling():
    from benchmarks.realcurve import curve_table
    pt = {"cls+mean.val_knn": 40.0, "cls+mean.val_linear": 60.0, "cls.val_knn": 38.0, "cls.val_linear": 55.0}
    curve = {"run": "r", "steps": 200, "seed": 0, "pools": ["cls", "cls+mean"],
             "points": {"200:teacher": {k: v + 10 for k, v in pt.items()}, "0:random": pt,
                        "100:teacher": {k: v + 5 for k, v in pt.items()}}}
    rows = [r for r in curve_table(curve).splitlines() if r.startswith("| ") and r[2].isdigit()]
    assert [r.split(" | ")[0] for r in rows] == ["| 0", "| 100", "| 200"]
    assert rows[0] == "| 0 | random | 38.0 | 55.0 | 40.0 | 60.0 |"
    assert rows[2] == "| 200 | teacher | 48.0 | 65.0 | 50.0 | 70.0 |"


def test_both_encoders_are_pooled_alike(tmp_path, monkeypatch):
    """--pool reaches retrieval and linear of the pretrained and the random encoder alike."""
    from slim.eval import api
    from slim.train.config import resolve, to_toml

    calls = []

    def fake_pretrain(data, run, preset, sets, log):
        run.mkdir(parents=True)
        (run / "run.json").write_text('{"total_steps": 600}')
        (run / "config.toml").write_text(to_toml(resolve("cpu-real")))

    def fake(kind):
        def call(run, **kw):
            calls.append((kind, kw["encoder"], kw["pool"]))
            return {"metrics": {"top1": 50.0, "val_top1": 40.0}, "eval_len": 32}
        return call

    monkeypatch.setattr(nwucla, "run_pretraining", fake_pretrain)
    monkeypatch.setattr(api, "retrieval", fake("retrieval"))
    monkeypatch.setattr(api, "linear", fake("linear"))
    run = tmp_path / "run"
    nwucla.pretrain_seed(tmp_path, run, "cpu-real", 1, None, 1, log=lambda s: None)
    f = nwucla.evaluate_seed(tmp_path, tmp_path, run, 1, 10, pool="cls")
    assert sorted(calls) == [("linear", "random:1", "cls"), ("linear", "trained", "cls"),
                             ("retrieval", "random:1", "cls"), ("retrieval", "trained", "cls")]
    assert f["margin_linear"] == 0.0 and f["pretrain_steps"] == 600


def test_seeds_run_on_parallel_lanes(tmp_path, monkeypatch):
    """--jobs 2 with 3 seeds: two pretrainings at once, each told to use cores // 2 threads;
    the supervised bound (first seed only) starts after that seed's run has finished and
    while the in-process torch thread count is the lane's; evaluation gets the threads back."""
    import threading
    import time

    import slim.ingest.run as ingest_run
    from slim.train.config import resolve, to_toml

    lock, state = threading.Lock(), {"running": 0, "most": 0, "done": [], "sets": []}

    def fake_ingest(dataset, raw, out, **kw):
        out.mkdir(parents=True, exist_ok=True)
        (out / "card.json").write_text(json.dumps(
            {"layout": "kinect_v1_20", "benchmarks": {"xview": {"train": 1020, "test": 464}}}))
        return out

    def fake_pretrain(data, run, preset, sets, log):
        with lock:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
            state["sets"].append(sets)
        run.mkdir(parents=True)
        (run / "run.json").write_text('{"total_steps": 600}')
        (run / "config.toml").write_text(to_toml(resolve("cpu-real")))
        time.sleep(0.2)
        with lock:
            state["running"] -= 1
            state["done"].append(run.name)

    def fake_bound(data, card, run_dir, seed, lrs=None):
        assert run_dir.name in state["done"]
        return {"supervised_top1": 70.0, "supervised_s": 1.0, "threads": torch.get_num_threads()}

    def fake_eval(data, out, run_dir, seed, linear_epochs, pool):
        return {"seed": seed, "pretrain_steps": 600, "global_batch": 32, "eval_len": 32,
                "pretrained_retrieval_k1": 60.0 + seed, "random_retrieval_k1": 50.0,
                "pretrained_linear": 70.0, "random_linear": 60.0, "margin_retrieval_k1": 10.0 + seed,
                "margin_linear": 10.0, "eval_s": 1.0, "run": run_dir.name, "threads": torch.get_num_threads()}

    monkeypatch.setattr(ingest_run, "ingest", fake_ingest)
    monkeypatch.setattr(nwucla, "run_pretraining", fake_pretrain)
    monkeypatch.setattr(nwucla, "supervised_bound", fake_bound)
    monkeypatch.setattr(nwucla, "evaluate_seed", fake_eval)
    monkeypatch.setattr(nwucla.os, "cpu_count", lambda: 2)
    before = torch.get_num_threads()
    f = nwucla.run(tmp_path / "raw", tmp_path, "cpu-real", seeds=(0, 1, 2), jobs=2, log=lambda s: None)
    assert state["most"] == 2 and len(state["done"]) == 3
    assert all("run.threads=1" in sets for sets in state["sets"])
    assert [s["seed"] for s in f["seeds"]] == [0, 1, 2]
    assert f["seeds"][0]["threads"] == 1 and "supervised_top1" not in f["seeds"][1]
    assert f["seeds"][1]["threads"] == before == torch.get_num_threads()
    assert f["margin_retrieval_k1"] == 11.0 and f["supervised_top1"] == 70.0
    assert f["jobs"] == 2 and f["threads_per_job"] == 1 and f["lanes_s"] >= 0.4
    assert "on 2 lanes of 1 thread(s)" in nwucla.table_markdown(f)


def test_curve_reads_teacher_and_student_of_every_kept_checkpoint(tmp_path):
    """benchmarks/realcurve.py scores each checkpoint's teacher: the same weights the run
    exports as encoder.pt at that step; the student is the other encoder of the pair."""
    from rich.console import Console
    from test_train_helpers import fake_source

    from benchmarks.realcurve import checkpoint_encoders
    from slim.model.io import load_encoder
    from slim.train import config as C
    from slim.train.checkpoint import export_encoder, list_checkpoints
    from slim.train.configtools import parse_set
    from slim.train.trainer import pretrain

    cfg = C.resolve("cpu-smoke", cli_overrides=parse_set(
        ["schedule.epochs=2", "schedule.epoch_steps=2", "run.threads=1", "checkpoint.every_steps=2",
         "checkpoint.keep_last=5"]))
    run = tmp_path / "run"
    pretrain(cfg, data_dir=tmp_path, benchmark="xsub", run_dir=run, batch_source=fake_source(),
             console=Console(quiet=True))
    steps = [s for s, _ in list_checkpoints(run)]
    assert steps == [2, 4]
    first, last = (checkpoint_encoders(p) for _, p in list_checkpoints(run))
    exported, _ = load_encoder(export_encoder(run))
    for k, v in exported.state_dict().items():
        assert torch.equal(last["teacher"].state_dict()[k], v), k
    moved = lambda a, b: any(not torch.equal(x, y) for x, y in zip(a.state_dict().values(),  # noqa: E731
                                                                   b.state_dict().values()))
    assert moved(first["teacher"], last["teacher"]) and moved(last["teacher"], last["student"])


def test_local_runs_never_rewrite_a_published_table(tmp_path, monkeypatch):
    from benchmarks import common
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results.json")
    assert common.table_path("nwucla", tmp_path / "results.json") == tmp_path / "nwucla.md"
    assert common.table_path("nwucla", tmp_path / "local.json") == tmp_path / "nwucla.local.md"


def test_real_ablations_pretrain_on_lanes(tmp_path, monkeypatch):
    """--real variants pretrain two at a time on a 2-core machine, each with one thread and
    its own switches on top of the shortened cpu-real schedule."""
    import threading
    import time

    from benchmarks import ablations

    lock, state = threading.Lock(), {"running": 0, "most": 0, "sets": {}}

    def fake_pretrain(data, run, preset, sets, log):
        with lock:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
            state["sets"][run.name] = sets
        time.sleep(0.2)
        with lock:
            state["running"] -= 1

    monkeypatch.setattr(nwucla, "run_pretraining", fake_pretrain)
    monkeypatch.setattr(nwucla.os, "cpu_count", lambda: 2)
    runs = ablations.pretrain_real_variants(tmp_path, tmp_path, ["cpu-real", "koleo_0.3", "lr_5e-4"], 150, 0)
    assert state["most"] == 2 and set(runs) == {"cpu-real", "koleo_0.3", "lr_5e-4"}
    sets = state["sets"]["koleo_0.3-150steps-seed0"]
    assert "model.koleo_weight=0.3" in sets and "run.threads=1" in sets and "schedule.epoch_steps=10" in sets
    assert not any(s.startswith("model.koleo") for s in state["sets"]["cpu-real-150steps-seed0"])
