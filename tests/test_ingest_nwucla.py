"""NW-UCLA ingest on a real excerpt (tests/fixtures/nwucla): folder and zip input, the
native kinect_v1_20 layout and the mapping onto ntu25, splits, skips with reasons, and
what the views do with the short sequences the set is full of."""
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from slim.ingest.cli import main as ingest_cli
from slim.ingest.h5store import H5Samples
from slim.ingest.manifest import dataset_layout, read_manifest
from slim.ingest.run import ingest
from slim.ingest.topology import KINECT_V1_20, NTU25, get_mapping
from slim.ingest.verify import verify

FIX = Path(__file__).parent / "fixtures" / "nwucla"
FILES = sorted(FIX.glob("*.json"))


def _raw(stem):
    return np.asarray(json.loads((FIX / f"{stem}.json").read_text())["skeletons"], np.float32)


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    return ingest("nwucla", FIX, tmp_path_factory.mktemp("nw") / "data")


def test_native_ingest_keeps_ids_fields_labels_and_centres_on_the_spine(native):
    assert native.name == "nwucla" and len(FILES) == 8
    table, meta = read_manifest(native)
    assert meta["layout"] == "kinect_v1_20" and dataset_layout(native) is KINECT_V1_20
    assert meta["benchmarks"] == ["xview", "xsub"] and meta["num_classes"] == 10
    h5 = H5Samples(native)
    assert h5.attrs["layout"] == "kinect_v1_20" and h5.num_joints_stored() == 20
    rows = {r["id"]: r for r in table.to_pylist()}
    assert sorted(rows) == sorted(p.stem for p in FILES)
    r = rows["a12_s04_e00_v01"]
    assert (r["action"], r["subject"], r["episode"], r["view"]) == (12, 4, 0, 1)
    assert r["label"] == 9 and meta["class_names"][9] == "carry"      # a12 is the 10th action
    assert rows["a06_s03_e02_v03"]["label"] == 5
    for sid, row in rows.items():
        assert row["xview_train"] == (row["view"] in (1, 2)) and row["xview_test"] == (row["view"] == 3)
        assert row["xsub_train"] == (row["subject"] % 2 == 1)
        x = h5.read(row["index"])
        raw = _raw(sid)
        assert x.shape == (raw.shape[0], 1, 20, 3) and row["num_frames"] == raw.shape[0]
        # the NTU centring rule: the centre joint (Spine) of the first frame is the origin
        np.testing.assert_allclose(x[:, 0], raw - raw[0, 1], atol=1e-6)
    card = json.loads((native / "card.json").read_text())
    assert card["layout"] == "kinect_v1_20" and "Spine(joint 1)" in card["normalization"]
    assert card["benchmarks"]["xview"] == {"train": 5, "test": 3}
    # 1-frame files are kept (the standard 1,020 / 464 counts include them) and reported
    assert any("single frame" in w and "a02_s09_e04_v02" in w for w in card["warnings"])
    assert card["sample_notes"]["a02_s09_e04_v03"] == ["1 frame: a static pose (its views repeat it)"]


def test_verify_checks_the_official_sizes(native):
    problems = verify(native)
    assert problems == ["8 samples; the official nwucla has 1484",
                        "xview train/test (5, 3); PROTOCOLS.md expects (1020, 464)",
                        "xsub train/test (5, 3); PROTOCOLS.md expects (724, 760)"]


def test_zip_input_and_bad_files_are_skipped_with_reasons(tmp_path, native):
    z = tmp_path / "all_sqe.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in FILES:
            zf.write(p, f"all_sqe/{p.name}")
        zf.writestr("all_sqe/a01_s02_e00_v01.json", '{"file_name": "a01_s02_e00_v01", "skeletons": [[[0, 0')
        frame19 = [[0.1, 0.2, 3.0]] * 19
        zf.writestr("all_sqe/a01_s02_e01_v01.json", json.dumps({"skeletons": [frame19] * 3, "label": 1}))
        zf.writestr("all_sqe/a02_s02_e01_v01.json",
                    json.dumps({"skeletons": [[[0.1, 0.2, 3.0]] * 20] * 3, "label": 7}))
        zf.writestr("all_sqe/a07_s02_e01_v01.json", json.dumps({"skeletons": [], "label": 1}))
        zf.writestr("all_sqe/README.txt", "not data")
    res = CliRunner().invoke(ingest_cli, ["nwucla", "--raw", str(z), "--out", str(tmp_path / "d"),
                                          "--workers", "0"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "d" / "nwucla"
    card = json.loads((out / "card.json").read_text())
    reasons = {s["file"]: s["reason"] for s in card["skipped"]}
    assert reasons["a01_s02_e00_v01.json"].startswith("bad JSON")
    assert reasons["a01_s02_e01_v01.json"] == "wrong joint count 19 in frame 1 (expected 20)"
    assert "disagrees with action a02" in reasons["a02_s02_e01_v01.json"]
    assert "NW-UCLA action" in reasons["a07_s02_e01_v01.json"]      # there is no a07
    assert card["num_samples"] == 8
    assert "1 files that are not NW-UCLA .json were ignored: README.txt" in card["warnings"]
    a, b = H5Samples(out), H5Samples(native)
    assert a.ids == b.ids
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read(i), b.read(i))          # zip = folder, byte for byte


def test_mapped_ingest_fills_missing_joints_and_says_so(tmp_path, native):
    out = ingest("nwucla", FIX, tmp_path / "data", layout="ntu25")
    assert out.name == "nwucla-ntu25" and dataset_layout(out) is NTU25
    card = json.loads((out / "card.json").read_text())
    assert card["layout"] == "ntu25"
    filled = card["layout_info"]["mapped"]["filled_joints"]
    assert filled == {"Neck": "ShoulderCenter", "HandTipLeft": "HandLeft", "ThumbLeft": "HandLeft",
                      "HandTipRight": "HandRight", "ThumbRight": "HandRight"}
    m, n = H5Samples(out), H5Samples(native)
    mapping = get_mapping("kinect_v1_20", "ntu25")
    for i in range(len(m)):
        x, y = m.read(i), n.read(i)
        assert x.shape[2] == 25
        np.testing.assert_array_equal(x, mapping.apply(y))
        np.testing.assert_array_equal(x[:, :, NTU25.joint_index["Neck"]],
                                      y[:, :, KINECT_V1_20.joint_index["ShoulderCenter"]])
        assert np.all(x[:, :, NTU25.center_joint][0] == 0)         # still centred on SpineMid
    res = CliRunner().invoke(ingest_cli, ["nwucla", "--raw", str(FIX), "--out", str(tmp_path / "e"),
                                          "--layout", "openpose18"])
    assert res.exit_code == 2 and "error: --layout openpose18" in res.output and "Traceback" not in res.output


def test_short_sequences_become_sensible_views_and_masks(native):
    """The 1-frame and 6-frame files: every view is the recorded motion linearly
    resampled (a 1-frame file: its pose repeated), never zero padding; masks cover the
    usual share of the token grid along the layout's groups."""
    from slim.pipeline.config import PipelineConfig
    from slim.pipeline.masking import run_table
    from slim.pipeline.transform import pretrain_batch
    from slim.pipeline.views import test_view

    h5 = H5Samples(native)
    ids = ["a02_s09_e04_v02", "a01_s10_e00_v03", "a01_s01_e00_v01"]
    samples = [h5.read(h5.ids.index(i)) for i in ids]
    assert [s.shape[0] for s in samples[:2]] == [1, 6]
    cfg = PipelineConfig()
    out = pretrain_batch(samples, cfg, np.random.default_rng(0), KINECT_V1_20)
    g = out["global"]
    assert g.shape == (3, 2, 64, 20, 3) and np.isfinite(g).all()
    # every frame of every view holds a skeleton (no empty padding frames)
    assert np.all(np.abs(g).sum(axis=(3, 4)) > 0)
    for s in out["locals"]:
        assert np.all(np.abs(s["x"]).sum(axis=(3, 4)) > 0)
    # the 1-frame sample: each view is one pose repeated (up to augmentation, which is
    # the same for every frame of a view)
    np.testing.assert_allclose(g[0, :, 1:], np.broadcast_to(g[0, :, :1], g[0, :, 1:].shape), atol=1e-6)
    # masks: 50-90 % (+ less than one tube) of the 8 x 20 global grid, tubes along groups
    m = out["global_mask"].reshape(3, 2, 8, 20)
    share = m.mean(axis=(2, 3))
    assert share.min() >= 0.5 and share.max() <= 0.9 + 4 / 160
    runs = {tuple(np.flatnonzero(r)) for r in run_table(KINECT_V1_20).joints}
    for row in m.reshape(-1, 20):
        if row.any():
            assert any(set(r) <= set(np.flatnonzero(row)) for r in runs)
    # the evaluation view of a 6-frame sample: the 6 frames spread over 64, endpoints kept
    v = test_view(samples[1])
    assert v.shape == (1, 64, 20, 3)
    np.testing.assert_allclose(v[0, 0], samples[1][0, 0], atol=1e-6)
    np.testing.assert_allclose(v[0, -1], samples[1][-1, 0], atol=1e-6)


def test_show_views_draw_the_chosen_presets_pipeline_on_real_clips(native, tmp_path, monkeypatch):
    """`slim-ingest show --views --preset P` draws the views P's pretraining makes (issue
    13: the pictures of real clips must show cpu-real's 32-frame globals and 16/8-frame
    locals, not the paper's 64/32/16/8); the default stays the paper's pipeline; a 1-frame
    real clip draws too; an unknown preset is an error with a hint, not a traceback."""
    pytest.importorskip("matplotlib")
    import slim.pipeline.transform as transform
    from slim.ingest.cmd_show import show
    from slim.train.config import resolve

    seen = []
    real = transform.pretrain_batch

    def spy(samples, cfg, rng, layout):
        out = real(samples, cfg, rng, layout)
        seen.append((cfg, out["global"].shape[2], [s["x"].shape[2] for s in out["locals"]]))
        return out

    monkeypatch.setattr(transform, "pretrain_batch", spy)
    run = CliRunner()
    for sid in ("a01_s01_e00_v01", "a02_s09_e04_v02"):  # 1-frame clip: its views repeat the pose
        out = tmp_path / f"{sid}.png"
        r = run.invoke(show, [str(native), sid, "--views", "--preset", "cpu-real", "--frames", "3",
                              "--out", str(out)], terminal_width=300)
        assert r.exit_code == 0, r.output
        assert out.read_bytes()[:4] == b"\x89PNG"
        assert "views of preset cpu-real: global 32 f, locals 16/8 f" in r.output
        cfg, g, locs = seen[-1]
        assert cfg == resolve("cpu-real").pipeline and (g, locs) == (32, [16, 8])
    r = run.invoke(show, [str(native), "a01_s01_e00_v01", "--views", "--frames", "2",
                          "--out", str(tmp_path / "paper.png")], terminal_width=300)
    assert r.exit_code == 0, r.output
    assert seen[-1][0] == resolve("paper").pipeline and seen[-1][1:] == (64, [32, 16, 8])
    r = run.invoke(show, [str(native), "a01_s01_e00_v01", "--views", "--preset", "cpu-rael",
                          "--out", str(tmp_path / "x.png")], terminal_width=300)
    assert r.exit_code == 2 and "unknown preset 'cpu-rael'" in r.output and "cpu-real" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "x.png").exists()
