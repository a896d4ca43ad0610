"""Saved classifiers and `slim-eval predict / export`: the file contract (strict keys,
weights_only, reuse), predictions on raw real fixtures equal to those on their ingested
samples, accuracy equal to the protocol's own, long-recording segments in the PKU label
format, bad inputs reported and skipped, and readable piped output."""
import json
from pathlib import Path
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from fixtures_path import FIX
from slim.eval import api
from slim.eval.classifier import (ClassifierError, classifier_path, load_classifier, make_head,
                                  save_classifier)
from slim.eval.cli import main as cli
from slim.eval.predict import PredictConfig, predict
from slim.eval.predict_inputs import discover, window_bounds
from slim.eval.segments import Segment, merge_windows
from slim.ingest import ntu_names, pku_reader
from slim.ingest.manifest import read_manifest
from slim.ingest.run import ingest
from slim.ingest.synth import SynthConfig, generate
from slim.model.encoder import Encoder, EncoderConfig
from slim.model.io import save_encoder

from eval_world import CFG, make_eval_world  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 4-class synthetic dataset, a run with a tiny encoder, and its linear classifier."""
    root = tmp_path_factory.mktemp("predictworld")
    data, run = make_eval_world(root)
    rec = api.linear(run, epochs=3, device="cpu", batch_size=16)
    return root, data, run, rec


def _tiny_classifier(path, class_names, layout="kinect-v2-25", seed=0, kind="linear"):
    enc = Encoder(EncoderConfig.tiny(dim=32, depth=1, heads=2), generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    head = make_head(kind, 64, len(class_names))
    if kind == "bn_linear":   # statistics as after training (not the identity of a fresh BatchNorm)
        head[0].running_mean.uniform_(-0.5, 0.5)
        head[0].running_var.uniform_(0.2, 2.0)
    return save_classifier(path, encoder=enc, head=head.eval(), head_kind=kind, pool="cls+mean",
                           protocol="finetune", variant="", dataset="x", benchmark="xsub",
                           meta={"class_names": class_names, "layout": layout, "normalization": "n"},
                           record={"metrics": {"top1": 1.0}}, config_key="k")


@pytest.fixture(scope="module")
def ntu_model(tmp_path_factory):
    return _tiny_classifier(tmp_path_factory.mktemp("ntu_model") / "ntu60.classifier.pt",
                            ntu_names.class_names("ntu60"))


# --- the classifier file ------------------------------------------------------------

def test_linear_writes_a_classifier_that_reproduces_its_accuracy(world):
    _, data, run, rec = world
    path = run / "eval" / "linear.classifier.pt"
    assert path.is_file() and rec["classifier"] == str(path)
    raw = torch.load(path, weights_only=True)           # plain types and tensors only
    assert raw["encoder"]["source"] == "reference" and raw["encoder"]["state_dict"] == {}
    saved = load_classifier(path)
    _table, meta = read_manifest(data)
    assert saved.class_names == meta["class_names"] and saved.layout == meta["layout"]
    assert saved.transform == {"name": "test_view", "out_len": 64, "crop": 0.95, "persons": 2}
    assert saved.record["metrics"] == rec["metrics"]
    # The saved head on the test split gives the protocol's own test accuracy.
    pred = predict(saved, discover([data]), PredictConfig(split="xsub_test"))
    assert pred.accuracy() == pytest.approx(rec["metrics"]["top1"], abs=1e-4)


def test_linear_reuses_a_classifier_of_the_same_config(world, monkeypatch):
    _, _data, run, rec = world
    import slim.eval.linear as linear
    monkeypatch.setattr(linear, "split_features", lambda *a, **k: pytest.fail("features recomputed"))
    again = api.linear(run, epochs=3, device="cpu", batch_size=16)
    assert again["reused"] is True and again["metrics"] == rec["metrics"]
    monkeypatch.undo()
    other = api.linear(run, epochs=2, device="cpu", batch_size=16)   # another config: trained
    assert not other.get("reused") and load_classifier(run / "eval" / "linear.classifier.pt").record[
        "config"]["epochs"] == 2


def test_finetune_and_random_encoders_are_embedded(world):
    _, data, run, _ = world
    api.finetune(run, epochs=1, device="cpu", batch_size=8)
    ft = load_classifier(run / "eval" / "finetune.classifier.pt")
    assert ft.encoder_source == "embedded" and ft.protocol == "finetune"
    assert ft.net.encoder.cfg.drop_path_rate == 0.0
    semi = api.semi(run, ratio=0.1, seeds=2, epochs=1, device="cpu", batch_size=8)
    sc = load_classifier(run / "eval" / "semi_10pct.classifier.pt")
    assert sc.protocol == "semi" and sc.variant == "10pct" and sc.encoder_source == "embedded"
    assert semi["classifier_seed"] in (0, 1) and sc.record["metrics"] == semi["metrics"]
    api.linear(run, encoder="random:3", epochs=1, device="cpu", batch_size=16)
    assert classifier_path(run, "linear", "random:3") == run / "eval" / "linear_random3.classifier.pt"
    assert load_classifier(run / "eval" / "linear_random3.classifier.pt").encoder_source == "embedded"


def test_loading_checks_keys_and_damage(world, tmp_path):
    _, _data, run, _ = world
    src = run / "eval" / "finetune.classifier.pt"
    if not src.is_file():
        api.finetune(run, epochs=1, device="cpu", batch_size=8)
    payload = torch.load(src, weights_only=True)
    bad = dict(payload, surprise=1)
    torch.save(bad, tmp_path / "extra.pt")
    with pytest.raises(ClassifierError, match="unexpected.*surprise"):
        load_classifier(tmp_path / "extra.pt")
    head = {**payload["head"], "state_dict": {k: v for k, v in payload["head"]["state_dict"].items()
                                              if k != "bias"}}
    torch.save({**payload, "head": head}, tmp_path / "missing.pt")
    with pytest.raises(ClassifierError, match="missing.*bias"):
        load_classifier(tmp_path / "missing.pt")
    data = src.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:len(data) // 2])
    with pytest.raises(ClassifierError, match="cut.pt"):
        load_classifier(tmp_path / "cut.pt")
    # A moved frozen-encoder reference is an error naming the file, not a wrong model.
    lin = tmp_path / "elsewhere" / "linear.classifier.pt"
    lin.parent.mkdir()
    shutil.copy(run / "eval" / "linear.classifier.pt", lin)
    enc = tmp_path / "enc_backup.pt"
    shutil.move(run / "encoder.pt", enc)
    try:
        with pytest.raises(ClassifierError, match="frozen encoder"):
            load_classifier(lin)
    finally:
        shutil.move(enc, run / "encoder.pt")
    assert load_classifier(lin).encoder_source == "reference"   # found again by its absolute path


# --- predict on real fixtures ----------------------------------------------------------

def test_raw_ntu_files_predict_like_their_ingested_samples(ntu_model, tmp_path):
    data = ingest("ntu60", [FIX / "ntu"], tmp_path / "data", workers=0)
    model = load_classifier(ntu_model)
    raw = predict(model, discover([FIX / "ntu"]), PredictConfig(batch_size=4))
    ing = predict(model, discover([data]), PredictConfig(batch_size=4))
    assert len(raw) == 6 and sorted(raw.ids) == sorted(ing.ids)
    order = [ing.ids.index(i) for i in raw.ids]
    np.testing.assert_allclose(raw.probs, ing.probs[order], rtol=0, atol=1e-6)
    assert raw.labels == [ing.labels[j] for j in order]                 # A001 -> class 0 ...
    assert raw.labels[raw.ids.index("S001C001P001R001A050")] == 49
    # Same joints, bit for bit, through the shared preprocessing.
    from slim.eval.predict_inputs import whole_item
    from slim.pipeline.sources import H5Dataset
    ds = H5Dataset(data)
    for row in ds.rows:
        it = ds.item(int(row))
        mine = whole_item(discover([FIX / "ntu" / f"{it['id']}.skeleton"]).sources[0], 60)
        assert np.array_equal(mine.joints, it["joints"])


def test_pku_windows_give_segments_in_the_pku_label_format(tmp_path):
    model_path = _tiny_classifier(tmp_path / "pku.classifier.pt", pku_reader.class_names())
    video = FIX / "pku" / "A10N08-L.txt"
    frames = pku_reader.parse_pku_skeleton(video.read_bytes()).shape[0]
    r = CliRunner().invoke(cli, ["predict", "--model", str(model_path), str(video), "--window", "60",
                                 "--stride", "20", "--segments", str(tmp_path / "seg"),
                                 "--out", str(tmp_path / "w.csv")])
    assert r.exit_code == 0, r.output
    rows = (tmp_path / "w.csv").read_text().splitlines()
    assert rows[0].startswith("id,source,video,start,end,label,top1,p1")
    assert len(rows) - 1 == len(window_bounds(frames, 60, 20))
    text = (tmp_path / "seg" / "A10N08-L.txt").read_text()
    notes = []
    segs = pku_reader.parse_labels(text, frames, notes)        # the dataset's own label reader
    assert segs and notes == []
    prev_end = 0
    for s, line in zip(segs, text.splitlines()):
        assert prev_end < s.start <= s.end <= frames and s.end - s.start + 1 >= 30
        assert 0 <= s.label < 51 and 0 < float(line.split(",")[3]) <= 1
        prev_end = s.end


def test_a_pku_window_predicts_like_the_ingested_segment_it_spans(tmp_path):
    root = tmp_path / "pku"
    (root / "PKU_Skeleton_Renew").mkdir(parents=True)
    (root / "Train_Label_PKU_final").mkdir()
    shutil.copyfile(FIX / "pku" / "A10N08-L.txt", root / "PKU_Skeleton_Renew" / "A10N08-L.txt")
    (root / "Train_Label_PKU_final" / "A10N08-L.txt").write_text("10,100,220,1\n")
    data = ingest("pku2", [root], tmp_path / "data", workers=0)
    model = load_classifier(_tiny_classifier(tmp_path / "pku.classifier.pt", pku_reader.class_names()))
    ing = predict(model, discover([data]), PredictConfig())
    raw = predict(model, discover([FIX / "pku" / "A10N08-L.txt"]), PredictConfig(window=121, stride=99))
    assert ing.ids == ["A10N08-L_0001"] and ing.labels == [9]
    j = raw.ids.index("A10N08-L:100-220")           # windows (1, 121), (100, 220), ...
    np.testing.assert_allclose(raw.probs[j], ing.probs[0], rtol=0, atol=1e-6)


def test_merge_windows_by_hand():
    p0, p1 = np.array([0.9, 0.1]), np.array([0.2, 0.8])
    bounds = [(1, 10), (6, 15), (11, 20), (16, 25)]
    segs = merge_windows(bounds, np.stack([p0, p0, p1, p1]), 30, min_len=3)
    # frames 1-10 class 0; 11-15 mean of p0 and p1 (0.55 vs 0.45): class 0; 16-25 class 1;
    # 26-30 covered by no window: no segment.
    assert segs == [Segment(0, 1, 15, pytest.approx((10 * 0.9 + 5 * 0.55) / 15)),
                    Segment(1, 16, 25, pytest.approx(0.8))]
    assert merge_windows(bounds, np.stack([p0, p0, p1, p1]), 30, min_len=11) == [Segment(0, 1, 15, pytest.approx((10 * 0.9 + 5 * 0.55) / 15))]
    assert window_bounds(10, 4, 3) == [(1, 4), (4, 7), (7, 10)]
    assert window_bounds(11, 4, 3) == [(1, 4), (4, 7), (7, 10), (8, 11)]
    assert window_bounds(3, 4, 3) == [(1, 3)]


# --- outputs, bad inputs, readable logs ----------------------------------------------

def test_outputs_agree_and_bad_files_are_skipped(ntu_model, tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir()
    for name in ("S001C001P001R001A005", "S001C001P001R001A006"):
        shutil.copy(FIX / "ntu" / f"{name}.skeleton", folder)
    (folder / "S001C001P001R001A007.skeleton").write_text("3\n1\nnot a body\n")
    (tmp_path / "notes.csv").write_text("a,b\n")
    short = tmp_path / "A01N01-L.txt"   # a PKU video of 5 frames: shorter than one patch (8)
    vals = np.random.default_rng(0).uniform(0.1, 1.0, (5, 150))
    short.write_text("".join(" ".join(f"{v:.4f}" for v in row) + "\n" for row in vals))
    outs = {}
    for suffix in ("csv", "jsonl", "parquet"):
        r = CliRunner().invoke(cli, ["predict", "--model", str(ntu_model), str(folder), str(short),
                                     str(tmp_path / "notes.csv"), "--top-k", "2",
                                     "--out", str(tmp_path / f"p.{suffix}")])
        assert r.exit_code == 0, r.output
        outs[suffix] = tmp_path / f"p.{suffix}"
    assert "S001C001P001R001A007.skeleton: not a readable NTU skeleton file" in r.output
    assert "notes.csv: unknown file format" in r.output
    assert "A01N01-L.txt: only 5 frames with a person; the model needs at least 8" in r.output
    assert "predicted 2 sequences, skipped 3" in r.output and "top-1 accuracy" in r.output
    csv_rows = outs["csv"].read_text().splitlines()
    assert csv_rows[0] == "id,source,label,top1,p1,top2,p2"
    jl = [json.loads(ln) for ln in outs["jsonl"].read_text().splitlines()]
    pa = pq.read_table(outs["parquet"]).to_pylist()
    assert [j["id"] for j in jl] == [p["id"] for p in pa] == ["S001C001P001R001A005", "S001C001P001R001A006"]
    assert [j["top"][0]["class"] for j in jl] == [p["top1"] for p in pa]
    assert [j["label"] for j in jl] == ["drop", "pickup"]
    assert all(p["p1"] >= p["p2"] for p in pa)


def test_model_and_input_errors_are_clear(world, ntu_model, tmp_path):
    _, data, _run, _ = world
    runner = CliRunner()
    cut = tmp_path / "cut.classifier.pt"
    cut.write_bytes(ntu_model.read_bytes()[:1000])
    for args, words in [
        (["--model", str(cut), str(FIX / "ntu")], ["cut.classifier.pt", "damaged"]),
        (["--model", str(ntu_model), str(data)], ["60 classes", "has 4"]),
        (["--model", str(_tiny_classifier(tmp_path / "k1.classifier.pt", ["a", "b"], layout="kinect_v1_20")),
          str(FIX / "ntu")], ["layout 'kinect_v1_20'"]),
        (["--model", str(ntu_model), str(tmp_path / "nothing.csv")], ["nothing to predict"]),
        (["--model", str(ntu_model), str(FIX / "pku" / "A10N08-L.txt"), "--window", "4"],
         ["--window 4 is shorter", "8 frames"]),
    ]:
        r = runner.invoke(cli, ["predict", *args])
        assert r.exit_code == 2, (args, r.output)
        assert "error:" in r.output and "hint:" in r.output and "Traceback" not in r.output
        for w in words:
            assert w in r.output, (w, r.output)


def test_piped_result_tables_keep_paths_on_one_line(world):
    _, _data, run, _ = world
    args = ["linear", "--run", str(run), "--epochs", "3", "--batch-size", "16", "--device", "cpu",
            "--no-progress"]
    CliRunner().invoke(cli, args)
    r = CliRunner().invoke(cli, args)                  # the second time: the saved classifier
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    written = [ln for ln in lines if ln.startswith(f"written to {run / 'eval' / 'linear_'}")]
    assert written, r.output                            # the whole path on one line
    assert Path(written[0].split()[2]).is_file(), written[0]
    assert any(ln.startswith("splits: train ") for ln in lines)
    assert any(ln.startswith("reused ") and "linear.classifier.pt" in ln for ln in lines), r.output


# --- ONNX --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bn_linear", "linear"])   # linear probe, fine-tuning head
def test_onnx_export_matches_pytorch_on_real_fixtures(kind, tmp_path):
    ntu_model = _tiny_classifier(tmp_path / "m.classifier.pt", ntu_names.class_names("ntu60"), kind=kind)
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install 'slim-skeleton[onnx]'")
    pytest.importorskip("onnx", reason="onnx not installed: pip install 'slim-skeleton[onnx]'")
    from slim.eval.predict import batch_tensors
    from slim.eval.predict_inputs import whole_item
    model = load_classifier(ntu_model)
    items = [whole_item(s, 60) for s in discover([FIX / "ntu"]).sources]
    x, pm = batch_tensors(items, 64, 0.95)
    assert pm[:, 1].any() and not pm[:, 1].all()        # one- and two-person samples
    with torch.no_grad():
        ref_p = torch.softmax(model.net(x, pm), -1).numpy()
        ref_f = model.net.features(x, pm).numpy()
    runner = CliRunner()
    for flag, name in (([], "m.onnx"), (["--encoder-only"], "e.onnx")):
        r = runner.invoke(cli, ["export", "--model", str(ntu_model), "--onnx", str(tmp_path / name), *flag])
        assert r.exit_code == 0, r.output
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), so, providers=["CPUExecutionProvider"])
    _logits, probs = sess.run(None, {"x": x.numpy(), "person_mask": pm.numpy()})
    np.testing.assert_allclose(probs, ref_p, rtol=0, atol=1e-4)
    one = sess.run(None, {"x": x[:1].numpy(), "person_mask": pm[:1].numpy()})[1]   # dynamic batch
    np.testing.assert_allclose(one, ref_p[:1], rtol=0, atol=1e-4)
    solo = np.flatnonzero(~pm[:, 1].numpy())                                         # dynamic persons
    p1 = sess.run(None, {"x": x[solo][:, :1].numpy(), "person_mask": pm[solo][:, :1].numpy()})[1]
    np.testing.assert_allclose(p1, ref_p[solo], rtol=0, atol=1e-4)
    enc = ort.InferenceSession(str(tmp_path / "e.onnx"), so, providers=["CPUExecutionProvider"])
    feats = enc.run(None, {"x": x.numpy(), "person_mask": pm.numpy()})[0]
    np.testing.assert_allclose(feats, ref_f, rtol=0, atol=1e-4)
