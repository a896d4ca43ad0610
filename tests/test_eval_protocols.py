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

CFG = EncoderConfig.tiny(dim=32, depth=1, heads=2)
FAST = dict(device="cpu", batch_size=16)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalworld")
    generate(root / "raw", SynthConfig(classes=4, performers=4, per_class=1, seed=0), progress=False)
    data = ingest("synthetic", root / "raw", root / "data", workers=0)
    run = root / "runs" / "r1"
    run.mkdir(parents=True)
    save_encoder(run / "encoder.pt", Encoder(CFG, generator=torch.Generator().manual_seed(1)))
    (run / "run.json").write_text(json.dumps({"data": str(data), "dataset": "synthetic",
                                              "benchmark": "xsub", "status": "finished"}))
    return root, data, run


def _split_size(data, col):
    table, _ = read_manifest(data)
    return int(np.asarray(table.column(col)).sum())


def test_retrieval_result_file_has_the_contract(world):
    _, data, run = world
    rec = api.retrieval(run, ks=(1, 5), device="cpu")
    saved = json.loads((run / "eval" / "retrieval.json").read_text())
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
    trained = json.loads((run / "eval" / "retrieval.json").read_text()) if (run / "eval" / "retrieval.json").exists() \
        else api.retrieval(run, device="cpu")
    r0 = api.retrieval(run, encoder="random:0", device="cpu")
    r3 = api.retrieval(run, encoder="random:3", device="cpu")
    assert r0["path"].endswith("retrieval_random.json") and r3["path"].endswith("retrieval_random3.json")
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
    saved = json.loads((run / "eval" / "linear.json").read_text())
    assert saved["selection"] == "test"                               # the last run wrote it


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
    assert rec["path"].endswith("transfer_synthetic.json") and rec["layout"]["joints"] == 25
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
    rec = api.semi(run, ratio=0.1, seeds=2, epochs=1, device="cpu", eval_batch=64)
    assert rec["path"].endswith("semi_10pct.json") and rec["variant"] == "10pct"
    assert rec["split_sizes"]["train"] == _split_size(data, "xsub_train_10pct")
    assert len(rec["metrics"]["top1_per_seed"]) == 2 and rec["metrics"]["top1_std"] >= 0
    ft = api.finetune(run, epochs=1, batch_size=8, warmup_epochs=0, device="cpu")
    assert ft["path"].endswith("finetune.json") and ft["selection"] == "val"
    assert 0 <= ft["metrics"]["top1"] <= 100


def test_report_lists_runs_side_by_side(world):
    root, data, run = world
    api.retrieval(run, device="cpu")
    res = CliRunner().invoke(cli, ["report", str(run)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "retrieval" in res.output and "r1" in res.output and "paper" in res.output


def test_missing_run_gives_a_readable_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["retrieval", "--k", "1"])
    assert res.exit_code != 0
    assert "no run found" in res.output and "hint" in res.output


@pytest.mark.parametrize("args, written", [
    (["linear", "--epochs", "2", "--lr", "0.1", "--select-on", "test"], "linear.json"),
    (["linear", "--epochs", "2", "--encoder", "random:0"], "linear_random.json"),
    (["semi", "--ratio", "0.1", "--seeds", "1", "--epochs", "1"], "semi_10pct.json"),
    (["finetune", "--epochs", "1", "--batch-size", "8", "--warmup-epochs", "0"], "finetune.json"),
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
    assert json.loads((run / "eval" / "transfer_synthetic.json").read_text())["protocol"] == "transfer"
