"""Every protocol end to end on a tiny synthetic dataset (synth generator + ingest) and a
tiny encoder in a hand-made run folder: result files, defaults, baselines, caching,
transfer layout checks, features parquet, report."""
import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from slim.eval import api
from slim.eval.cli import main as cli
from slim.eval.target import TargetError
from slim.ingest.manifest import read_manifest, write_manifest
from slim.ingest.run import ingest
from slim.ingest.synth import SynthConfig, generate
from slim.model.encoder import Encoder, EncoderConfig
from slim.model.io import save_encoder

from eval_world import CFG, make_eval_world  # noqa: E402
FAST = dict(device="cpu", batch_size=16)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalworld")
    data, run = make_eval_world(root)
    return root, data, run


def _split_size(data, col):
    table, _ = read_manifest(data)
    return int(np.asarray(table.column(col)).sum())


def test_retrieval_result_file_has_the_contract(world):
    _, data, run = world
    rec = api.retrieval(run, ks=(1, 5), device="cpu")
    assert rec["path"].endswith("retrieval_synthetic_xsub_k1-5_cls+mean.json")
    saved = json.loads((run / "eval" / "retrieval_synthetic_xsub_k1-5_cls+mean.json").read_text())
    for key in ("protocol", "selection", "dataset", "benchmark", "split_sizes", "metrics",
                "config", "encoder_sha256", "code_version"):
        assert key in saved
    assert saved["protocol"] == "retrieval" and saved["dataset"] == "synthetic"
    assert saved["split_sizes"] == {"gallery": _split_size(data, "xsub_train"),
                                    "query": _split_size(data, "xsub_test")}
    assert 0 <= saved["metrics"]["top1_k1"] <= 100 and "top1_k5" in saved["metrics"]
    assert saved["metrics"] == rec["metrics"]
    import hashlib
    assert saved["encoder_sha256"] == hashlib.sha256((run / "encoder.pt").read_bytes()).hexdigest()


def test_bare_command_uses_latest_run_and_its_data(world, monkeypatch):
    root, data, run = world
    monkeypatch.chdir(root)
    res = CliRunner().invoke(cli, ["retrieval", "--k", "1", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "runs/r1" in res.output and str(data) in res.output
    assert "retrieval" in res.output and "top1_k1" in res.output


def test_random_baseline_goes_to_its_own_file(world):
    _, data, run = world
    trained = api.retrieval(run, device="cpu")
    r0 = api.retrieval(run, encoder="random:0", device="cpu")
    r3 = api.retrieval(run, encoder="random:3", device="cpu")
    assert r0["path"].endswith("_random0.json") and r3["path"].endswith("_random3.json")
    assert len({trained["path"], r0["path"], r3["path"]}) == 3
    assert r0["encoder"]["label"] == "random:0" and r0["encoder"]["config"]["dim"] == CFG.dim
    assert len({trained["encoder_sha256"], r0["encoder_sha256"], r3["encoder_sha256"]}) == 3
    again = api.retrieval(run, encoder="random:3", device="cpu", cache=False)
    assert again["metrics"] == r3["metrics"]                       # the seed fixes the baseline


def test_linear_honest_and_paper_selection(world):
    _, data, run = world
    n_train = _split_size(data, "xsub_train")
    honest = api.linear(run, epochs=3, lrs=(0.1, 0.3), **FAST)
    assert honest["selection"] == "val"
    sizes = honest["split_sizes"]
    assert sizes["train"] + sizes["val"] == n_train and sizes["val"] >= 4   # one per class at least
    assert honest["metrics"]["lr"] in (0.1, 0.3) and 1 <= honest["metrics"]["epoch"] <= 3
    paper = api.linear(run, epochs=3, select_on="test", **FAST)
    assert paper["selection"] == "test" and paper["split_sizes"]["train"] == n_train
    assert paper["metrics"]["top1"] >= paper["metrics"]["top1_last_epoch"]
    assert honest["path"] != paper["path"]                             # neither overwrote the other
    assert json.loads(open(honest["path"]).read())["selection"] == "val"
    assert json.loads(open(paper["path"]).read())["selection"] == "test"


def test_feature_cache_is_reused_and_keyed_by_pool(world):
    _, data, run = world
    cache = run / "eval" / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    a = api.retrieval(run, device="cpu")
    files = sorted(cache.glob("*.npz"))
    assert len(files) == 2                                            # train + test
    mtimes = [f.stat().st_mtime_ns for f in files]
    b = api.retrieval(run, device="cpu")
    assert [f.stat().st_mtime_ns for f in files] == mtimes and a["metrics"] == b["metrics"]
    api.retrieval(run, device="cpu", pool="cls")
    assert len(list(cache.glob("*.npz"))) == 4
    with np.load(files[0]) as z:
        assert z["x"].shape[1] in (CFG.dim, 2 * CFG.dim)


def test_features_parquet_has_ids_labels_and_embeddings(world, tmp_path):
    _, data, run = world
    out = tmp_path / "f.parquet"
    res = CliRunner().invoke(cli, ["features", "--out", str(out), "--run", str(run), "--device", "cpu",
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    t = pq.read_table(out)
    table, _ = read_manifest(data)
    assert t.num_rows == table.num_rows                               # train + test = all of xsub
    assert sorted(t.column("id").to_pylist()) == sorted(table.column("id").to_pylist())
    lab = dict(zip(table.column("id").to_pylist(), table.column("label").to_pylist()))
    assert all(lab[i] == y for i, y in zip(t.column("id").to_pylist(), t.column("label").to_pylist()))
    assert len(t.column("feature")[0].as_py()) == 2 * CFG.dim
    assert t.schema.metadata[b"slim.pool"] == b"cls+mean"


def test_transfer_checks_layouts(world, tmp_path):
    root, data, run = world
    rec = api.transfer(run, data, epochs=2, device="cpu")
    assert rec["path"].endswith("transfer_synthetic_xsub_from-synthetic_cls+mean_sel-val.json")
    assert rec["layout"]["joints"] == 25
    other = tmp_path / "other"
    shutil.copytree(data, other, ignore=shutil.ignore_patterns("shards"))
    table, meta = read_manifest(other)
    meta = {k: v for k, v in meta.items() if not k.startswith("slim.")}
    write_manifest(other, table, {**meta, "layout": "kinect_v1_20"})
    with pytest.raises(TargetError, match="kinect_v1_20, 20 joints"):  # the data says 20 joints
        api.transfer(run, other, epochs=1, device="cpu")
    write_manifest(other, table, {**meta, "layout": "openpose-18"})
    with pytest.raises(TargetError, match="unknown skeleton layout 'openpose-18'"):
        api.transfer(run, other, epochs=1, device="cpu")


def test_semi_and_finetune_smoke(world):
    _, data, run = world
    rec = api.semi(run, ratio=0.1, seeds=2, epochs=2, device="cpu", eval_batch=64, min_steps=6)
    assert rec["metrics"]["steps"] == 6          # the step rule: 4 labelled rows, batch 64 -> 3 passes/epoch
    assert rec["path"].endswith("semi_synthetic_xsub_10pct_cls+mean_sel-val.json") and rec["variant"] == "10pct"
    assert rec["split_sizes"]["train"] == _split_size(data, "xsub_train_10pct")
    assert len(rec["metrics"]["top1_per_seed"]) == 2 and rec["metrics"]["top1_std"] >= 0
    ft = api.finetune(run, epochs=1, batch_size=8, warmup_epochs=0, device="cpu")
    assert ft["path"].endswith("finetune_synthetic_xsub_cls+mean_sel-val.json") and ft["selection"] == "val"
    assert 0 <= ft["metrics"]["top1"] <= 100


def test_report_lists_runs_side_by_side(world):
    root, data, run = world
    api.retrieval(run, device="cpu")
    res = CliRunner().invoke(cli, ["report", str(run)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "retrieval" in res.output and "r1" in res.output and "paper" in res.output


def test_no_result_is_lost_and_report_shows_k_pool_selection(world, tmp_path):
    """Every evaluation lands in its own file and in the append-only results.jsonl; the
    report reads the log and tells the settings apart."""
    root, data, run = world
    log = run / "eval" / "results.jsonl"
    before = log.read_text().splitlines() if log.exists() else []
    a = api.retrieval(run, ks=(1,), device="cpu", pool="cls")
    b = api.retrieval(run, ks=(1, 10), device="cpu", pool="mean")
    c = api.linear(run, epochs=1, lrs=(0.1,), select_on="test", pool="cls", **FAST)
    assert len({a["path"], b["path"], c["path"]}) == 3
    lines = log.read_text().splitlines()
    assert lines[:len(before)] == before                             # appended, never rewritten
    new = [json.loads(x) for x in lines[len(before):]]
    assert [r["file"] for r in new] == [a["path"].rsplit("/", 1)[1], b["path"].rsplit("/", 1)[1],
                                        c["path"].rsplit("/", 1)[1]]
    assert new[1]["settings"] == {"k": [1, 10], "pool": "mean"}
    # an encoder file given alone: results beside it, named after it, never colliding
    shutil.copy(run / "encoder.pt", tmp_path / "e1.pt")
    save_encoder(tmp_path / "e2.pt", Encoder(CFG, generator=torch.Generator().manual_seed(7)))
    p1 = api.retrieval(tmp_path / "e1.pt", data, device="cpu")["path"]
    p2 = api.retrieval(tmp_path / "e2.pt", data, device="cpu")["path"]
    assert p1 != p2 and "enc-e1-" in p1 and "enc-e2-" in p2
    res = CliRunner().invoke(cli, ["report", str(run), str(tmp_path), "--format", "csv"])
    assert res.exit_code == 0, res.output
    rows = [r.split(",") for r in res.output.strip().splitlines()]
    assert rows[0][:6] == ["protocol", "data", "k", "pool", "sel", "encoder"]
    settings = {tuple(r[:6]) for r in rows[1:]}
    assert ("retrieval", "synthetic xsub", "10", "mean", "none", "trained") in settings
    assert ("linear", "synthetic xsub", "", "cls", "test", "trained") in settings
    assert ("retrieval", "synthetic xsub", "1", "cls+mean", "none", "e2.pt") in settings
    md = CliRunner().invoke(cli, ["report", str(run), "--format", "md"])
    assert md.exit_code == 0 and md.output.startswith("| protocol | data |")
    narrow = CliRunner().invoke(cli, ["report", str(run)], terminal_width=80)
    assert narrow.exit_code == 0 and max(len(x) for x in narrow.output.splitlines()) <= 80


def test_latest_result_copy_per_protocol_and_encoder(world, tmp_path):
    """`eval/<protocol>.json` holds the newest result of that protocol for the run's own
    encoder (a baseline gets `<protocol>_random<SEED>.json`, so it never replaces it),
    names the per-setting file it copies, and is not counted twice by a report that
    reads the files."""
    from slim.eval.report import load_results

    root, data, run = world
    a = api.retrieval(run, ks=(1,), device="cpu", pool="cls")
    latest = json.loads((run / "eval" / "retrieval.json").read_text())
    assert latest["latest_of"] == a["path"].rsplit("/", 1)[1] and latest["settings"]["pool"] == "cls"
    b = api.retrieval(run, ks=(1, 10), device="cpu", pool="mean")
    api.retrieval(run, ks=(1,), device="cpu", encoder="random:3")
    latest = json.loads((run / "eval" / "retrieval.json").read_text())
    per_setting = json.loads(open(b["path"]).read())
    assert latest["latest_of"] == b["path"].rsplit("/", 1)[1]
    assert {k: v for k, v in latest.items() if k != "latest_of"} == per_setting
    base = json.loads((run / "eval" / "retrieval_random3.json").read_text())
    assert base["encoder"]["label"] == "random:3"
    # a folder read from its files (no results.jsonl): the copies are skipped
    copy = tmp_path / "old"
    shutil.copytree(run / "eval", copy / "eval")
    (copy / "eval" / "results.jsonl").unlink()
    files = [r["file"] for r in load_results(copy)]
    assert files and "retrieval.json" not in files and "retrieval_random3.json" not in files
    assert len(files) == len(set(files)) == len([p for p in (copy / "eval").glob("*.json")
                                                 if "latest_of" not in json.loads(p.read_text())])


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "notarun").mkdir()
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "notarun")], terminal_width=300)
    assert res.exit_code == 2 and "not a run folder" in res.output and "hint" in res.output
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "missing")], terminal_width=300)
    assert res.exit_code == 2 and "no such run folder" in " ".join(res.output.split())


def test_unfinished_run_is_evaluated_with_a_warning_and_recorded(world, tmp_path):
    root, data, run = world
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(run / "encoder.pt", half / "encoder.pt")
    (half / "run.json").write_text(json.dumps({"data": str(data), "dataset": "synthetic", "benchmark": "xsub",
                                               "status": "interrupted", "step": 5, "total_steps": 12}))
    res = CliRunner().invoke(cli, ["retrieval", "--k", "1", "--run", str(half), "--device", "cpu",
                                   "--no-progress"], terminal_width=200)
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "not finished" in said and "step 5 of 12" in said
    rec = json.loads(next((half / "eval").glob("retrieval_*.json")).read_text())
    assert rec["run_status"] == {"status": "interrupted", "step": 5, "total_steps": 12}
    assert rec["encoder"]["run_status"]["step"] == 5 and "not finished" in rec["warnings"][0]
    rep = CliRunner().invoke(cli, ["report", str(half)], terminal_width=200)
    assert "*" in rep.output and "unfinished" in rep.output


def test_missing_run_gives_a_readable_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["retrieval", "--k", "1"])
    assert res.exit_code != 0
    assert "no run found" in res.output and "hint" in res.output


@pytest.mark.parametrize("args, written", [
    (["linear", "--epochs", "2", "--lr", "0.1", "--select-on", "test"],
     "linear_synthetic_xsub_cls+mean_sel-test.json"),
    (["linear", "--epochs", "2", "--encoder", "random:0"], "linear_synthetic_xsub_cls+mean_sel-val_random0.json"),
    (["semi", "--ratio", "0.1", "--seeds", "1", "--epochs", "1", "--min-steps", "2", "--no-progress"],
     "semi_synthetic_xsub_10pct_cls+mean_sel-val.json"),
    (["finetune", "--epochs", "1", "--batch-size", "8", "--warmup-epochs", "0"],
     "finetune_synthetic_xsub_cls+mean_sel-val.json"),
])
def test_cli_commands_write_their_result_files(world, args, written):
    _, data, run = world
    target = run / "eval" / written
    target.unlink(missing_ok=True)
    res = CliRunner().invoke(cli, [*args, "--run", str(run), "--device", "cpu"], terminal_width=200)
    assert res.exit_code == 0, res.output
    rec = json.loads(target.read_text())
    assert rec["selection"] == ("test" if "test" in args else "val")
    assert rec["encoder"]["label"] == ("random:0" if "random:0" in args else "trained")


def test_cli_transfer_from_source_run(world):
    _, data, run = world
    res = CliRunner().invoke(cli, ["transfer", "--source", str(run), "--target", str(data),
                                   "--epochs", "1", "--device", "cpu", "--no-progress"], terminal_width=200)
    assert res.exit_code == 0, res.output
    saved = run / "eval" / "transfer_synthetic_xsub_from-synthetic_cls+mean_sel-val.json"
    assert json.loads(saved.read_text())["protocol"] == "transfer"


@pytest.mark.parametrize("args, said", [
    (["--device", "gpu"], "not a device name"),
    (["--device", "cuda:x"], "not a device name"),
    (["--encoder", "DATA_H5"], "an HDF5 file"),
    (["--epochs", "0"], "0 is not in the range"),
] + ([] if torch.cuda.is_available() else [(["--device", "cuda"], "no CUDA device")]))
def test_bad_device_epochs_and_encoder_files_are_clean_errors(world, args, said):
    _, data, run = world
    args = [str(data / "samples.h5") if a == "DATA_H5" else a for a in args]
    res = CliRunner().invoke(cli, ["linear", "--run", str(run), *args], terminal_width=300)
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert said in text and "Traceback" not in text and res.exception is None or \
        isinstance(res.exception, SystemExit)
    if "error:" in text:
        assert "hint:" in text and "weights_only" not in text


def test_features_csv_out_writes_csv(world, tmp_path):
    import csv
    _, data, run = world
    out = tmp_path / "f.csv"
    res = CliRunner().invoke(cli, ["features", "--out", str(out), "--run", str(run), "--device", "cpu",
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(out.open()))
    assert rows[0][:4] == ["id", "index", "label", "split"] and len(rows[0]) == 4 + 2 * CFG.dim
    table, _ = read_manifest(data)
    assert len(rows) - 1 == table.num_rows and float(rows[1][4]) == float(rows[1][4])
    bad = CliRunner().invoke(cli, ["features", "--out", str(tmp_path / "f.txt"), "--run", str(run)],
                             terminal_width=300)
    assert bad.exit_code == 2 and "neither Parquet nor CSV" in bad.output and not (tmp_path / "f.txt").exists()


def test_hints_name_options_the_command_has(world, tmp_path):
    """Item 11 of issue 18: a hint never points at a wrong option or a wrong remedy."""
    _, data, run = world
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(cli, ["transfer", "--source", str(run), "--target", str(tmp_path / "empty")],
                             terminal_width=300)
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "--target" in text and "--data" not in text, res.output
    res = CliRunner().invoke(cli, ["transfer", "--source", str(run), "--target", str(data.parent)],
                             terminal_width=300)
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and f"--target {data}" in text and "--data" not in text, res.output
    res = CliRunner().invoke(cli, ["retrieval", "--k", "0", "--run", str(run)], terminal_width=300)
    assert res.exit_code == 2 and "ingest" not in res.output and "--k" in res.output
    from slim.train.cli import main as train_cli
    res = CliRunner().invoke(train_cli, ["export", str(data)], terminal_width=300)
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "dataset folder" in text and "--out" not in text, res.output


def test_transfer_takes_run_like_the_others_and_an_encoder_file(world, tmp_path):
    _, data, run = world
    res = CliRunner().invoke(cli, ["transfer", "--run", str(run), "--target", str(data), "--epochs", "1",
                                   "--device", "cpu", "--no-progress"], terminal_width=200)
    assert res.exit_code == 0, res.output
    shutil.copy(run / "encoder.pt", tmp_path / "src.pt")
    res = CliRunner().invoke(cli, ["transfer", "--encoder", str(tmp_path / "src.pt"), "--target", str(data),
                                   "--epochs", "1", "--device", "cpu", "--no-progress"], terminal_width=200)
    assert res.exit_code == 0, res.output
    rec = json.loads(next((tmp_path / "eval").glob("transfer_synthetic_xsub_*enc-src-*.json")).read_text())
    assert rec["source"]["encoder"].endswith("src.pt") and rec["layout"]["joints"] == 25


def test_result_files_hold_top5_per_class_and_confusion(world):
    """Issue 18 item 19: the confusion matrix agrees with top-1, per-class accuracy with
    the matrix, and top-5 >= top-1, for every protocol."""
    _, data, run = world
    recs = {"retrieval": api.retrieval(run, ks=(1, 3), device="cpu"),
            "linear": api.linear(run, epochs=2, lrs=(0.1,), **FAST),
            "semi": api.semi(run, ratio=0.1, seeds=2, epochs=1, device="cpu", eval_batch=64, progress=False,
                             min_steps=0),
            "finetune": api.finetune(run, epochs=1, batch_size=8, warmup_epochs=0, device="cpu", progress=False)}
    n_test = _split_size(data, "xsub_test")
    for name, rec in recs.items():
        saved = json.loads(open(rec["path"]).read())
        details = saved["detail"].values() if name == "retrieval" else [saved["detail"]]
        tops = [saved["metrics"][f"top1_k{k}"] for k in (1, 3)] if name == "retrieval" else [saved["metrics"]["top1"]]
        for d, top1 in zip(details, tops):
            conf = np.array(d["confusion"])
            assert conf.shape == (4, 4) and conf.sum() == n_test * d.get("runs", 1), name
            if name != "semi":
                assert 100 * np.trace(conf) / conf.sum() == pytest.approx(top1), name
            for c, acc in enumerate(d["per_class_top1"]):
                assert acc is None or acc == pytest.approx(100 * conf[c, c] / conf[c].sum(), abs=1e-3)
            assert d["top5"] >= 100 * np.trace(conf) / conf.sum() - 1e-6
            assert d["class_names"] == read_manifest(data)[1]["class_names"]


def test_few_label_step_rule():
    """Issue 18 item 12: a labelled subset smaller than a batch still gets min_steps
    optimiser steps (passes repeated per epoch); a large one keeps one pass per epoch."""
    from slim.eval.finetune import SEMI_MIN_STEPS, FinetuneConfig, passes_per_epoch
    assert FinetuneConfig.semi().min_steps == SEMI_MIN_STEPS == 700 and FinetuneConfig().min_steps == 0
    assert passes_per_epoch(48, 64, 100, 700) == (7, 1)              # 1 step a pass -> 700 steps
    assert passes_per_epoch(400, 64, 100, 700) == (2, 6)             # 6 x 100 < 700 -> 2 passes
    assert passes_per_epoch(4000, 64, 100, 700) == (1, 62)           # the paper's 10 %: unchanged
    assert passes_per_epoch(10, 4, 3, 0) == (1, 2)
    with pytest.raises(ValueError):
        passes_per_epoch(0, 64, 100, 700)
