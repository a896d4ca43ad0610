"""Every input accounted for (files seen = ingested + skipped + ignored, PKU label lines =
samples + skipped lines), and non-finite / impossible coordinates never stored nor fed."""
import io
import json
import math
import shutil

import numpy as np
import pytest
import torch

from slim.ingest.coords import MAX_ABS_M, to_float32_finite
from slim.ingest.h5store import H5Samples
from slim.ingest.ntu_reader import parse_ntu
from slim.ingest.pku_reader import parse_pku_skeleton
from slim.ingest.run import ingest
from slim.ingest.verify import verify

from fixtures_path import FIX
from test_ingest_run import small_ntu

GOOD = FIX / "ntu" / "S001C001P001R001A005.skeleton"


def card_of(out):
    return json.loads((out / "card.json").read_text())


def accounted_paths(card):
    """Each raw file (path under its root) as the card accounts for it: name -> kind."""
    got = {}
    for kind in ("skipped", "ignored"):
        for row in card[kind]:
            assert row["reason"], row
            assert row["path"] not in got, f"{row['path']} accounted twice"
            got[row["path"]] = kind
    return got


def test_stray_files_are_each_accounted_for(tmp_path):
    raw = tmp_path / "raw"
    d = raw / "nturgb+d_skeletons"
    (d / "part1" / "deeper").mkdir(parents=True)
    (raw / "__MACOSX" / "nturgb+d_skeletons").mkdir(parents=True)
    shutil.copyfile(GOOD, d / "part1" / "deeper" / "S001C001P001R001A005.skeleton")   # nested: ingested
    shutil.copyfile(GOOD, d / "S001C001P001R001A006.SKELETON")                        # upper case: ingested
    shutil.copyfile(GOOD, d / "S001C001P001R001A007.Skeleton")                        # mixed case: ingested
    shutil.copyfile(GOOD, d / "S001C001P001R001A005 (1).skeleton")                   # browser copy
    shutil.copyfile(GOOD, d / "part1" / "S001C001P001R001A006.skeleton")             # second copy of A006
    shutil.copyfile(GOOD, d / "S001C002P005R002A008.skeleton")                        # officially missing
    shutil.copyfile(GOOD, d / "S018C001P001R001A001.skeleton")                        # NTU-120 only
    (raw / "__MACOSX" / "nturgb+d_skeletons" / "._S001C001P001R001A009.skeleton").write_bytes(b"\0\5\26\7")
    (d / "._S001C001P001R001A010.skeleton").write_bytes(b"\0\5\26\7")
    (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (d / "NTU_RGBD_samples_with_missing_skeletons.txt").write_text("S001C002P005R002A008\n")
    (d / "README").write_text("notes\n")
    (d / "S001C001P001R001A011.skeleton").write_bytes(b"")                           # empty
    (d / "S001C001P001R001A012.skeleton").write_bytes(GOOD.read_bytes()[:3000])     # truncated
    (d / "S001C001P001R001A013.skeleton").write_bytes(bytes(range(256)))           # binary
    out = ingest("ntu60", [raw], tmp_path / "data")
    card = card_of(out)
    a = card["accounting"]
    assert a == {"rule": a["rule"], "files_seen": 15, "files_ingested": 3, "files_skipped": 7,
                 "files_ignored": 5, "samples_written": 3}
    assert H5Samples(out).ids == ["S001C001P001R001A005", "S001C001P001R001A006", "S001C001P001R001A007"]
    kinds = accounted_paths(card)
    all_files = {str(p.relative_to(raw)) for p in raw.rglob("*") if p.is_file()}
    ingested = {"nturgb+d_skeletons/part1/deeper/S001C001P001R001A005.skeleton",
                "nturgb+d_skeletons/S001C001P001R001A006.SKELETON",
                "nturgb+d_skeletons/S001C001P001R001A007.Skeleton"}
    assert set(kinds) | ingested == all_files and not set(kinds) & ingested
    reasons = {r["path"].split("/")[-1]: r["reason"] for r in card["skipped"] + card["ignored"]}
    assert "copy of S001C001P001R001A005" in reasons["S001C001P001R001A005 (1).skeleton"]
    assert "second file for S001C001P001R001A006" in reasons["S001C001P001R001A006.skeleton"]
    assert reasons["S001C002P005R002A008.skeleton"] == "in the official missing-sample list"
    assert "outside ntu60" in reasons["S018C001P001R001A001.skeleton"]
    assert "AppleDouble" in reasons["._S001C001P001R001A009.skeleton"]
    assert "AppleDouble" in reasons["._S001C001P001R001A010.skeleton"]
    assert ".DS_Store" in reasons[".DS_Store"]
    assert reasons["S001C001P001R001A011.skeleton"] == "empty file"
    assert "truncated" in reasons["S001C001P001R001A012.skeleton"]
    assert "binary" in reasons["S001C001P001R001A013.skeleton"]
    assert "not a .skeleton file" in reasons["README"]
    official = ("official", "PROTOCOLS.md")    # 3 samples are not the official NTU-60 sizes
    assert [p for p in verify(out, check_shards=False) if not any(w in p for w in official)] == []
    # verify checks the identity: a card that loses one file is caught
    broken = dict(card, ignored=card["ignored"][1:])
    (out / "card.json").write_text(json.dumps(broken))
    assert any("files seen" in p for p in verify(out, check_shards=False))
    # a new stray file changes the fingerprint: the card is rewritten to account for it
    (out / "card.json").write_text(json.dumps(card))
    (d / "extra.md").write_text("x")
    out = ingest("ntu60", [raw], tmp_path / "data")
    assert card_of(out)["accounting"]["files_ignored"] == 6


def pku_video(path, rows=60, inf_rows=()):
    rng = np.random.default_rng(3)
    v = rng.uniform(0.1, 2.0, size=(rows, 150))
    v[:, 75:] = 0
    v[20:30] = 0                       # nobody in rows 21-30
    text = "\n".join(" ".join("inf" if r in inf_rows and j == 4 else f"{x:f}" for j, x in enumerate(row))
                     for r, row in enumerate(v))
    path.write_text(text + "\n")


def test_pku_every_label_line_is_a_sample_or_a_skipped_entry(tmp_path):
    raw = tmp_path / "raw"
    (raw / "skeleton").mkdir(parents=True)
    (raw / "label").mkdir()
    pku_video(raw / "skeleton" / "A01N01-L.TXT", inf_rows=(5,))     # upper case; row 6 has inf
    pku_video(raw / "skeleton" / "A01N01-M.txt")
    pku_video(raw / "skeleton" / "A01N01-R.txt")                     # no label file
    (raw / "label" / "A01N01-L.txt").write_text(
        "1,1,10,1\n\n2,21,30,1\n3,x,5,1\n,,,\n60,1,5,1\n4,70,80,1\n5,40,50,1\n")
    (raw / "label" / "A01N01-M.txt").write_text("7,1,5,1\n")
    (raw / "label" / "A02N01-L.txt").write_text("1,1,5,1\n2,6,9,1\n")  # no skeleton file
    (raw / "cross_subject_v2.txt").write_text("Training videos: A01N01-L, A01N01-M\n"
                                              "Validataion videos: A01N01-R\n")
    (raw / "Actions.xlsx").write_bytes(b"PK\3\4")
    out = ingest("pku2", [raw], tmp_path / "data")
    card = card_of(out)
    a = card["accounting"]
    assert H5Samples(out).ids == ["A01N01-L_0001", "A01N01-L_0008", "A01N01-M_0001"]
    assert a["label_lines"] == 7 + 1 + 2 == a["samples_written"] + a["label_lines_skipped"]
    lines = {(r["video"], r["line"]): r["reason"] for r in card["skipped_labels"]}
    assert set(lines) == {("A01N01-L", 3), ("A01N01-L", 4), ("A01N01-L", 5), ("A01N01-L", 6),
                          ("A01N01-L", 7), ("A02N01-L", 1), ("A02N01-L", 2)}
    assert "no person" in lines[("A01N01-L", 3)] and "outside 1..51" in lines[("A01N01-L", 6)]
    assert "outside the video" in lines[("A01N01-L", 7)] and "skeleton" in lines[("A02N01-L", 1)]
    assert a["files_seen"] == 8 == a["files_ingested"] + a["files_skipped"] + a["files_ignored"]
    assert a["files_ingested"] == 4 and a["files_skipped"] == 2 and a["files_ignored"] == 2
    reasons = {r["file"]: r["reason"] for r in card["ignored"]}
    assert "split list" in reasons["cross_subject_v2.txt"] and "not a PKU-MMD" in reasons["Actions.xlsx"]
    # the inf in row 6 (inside segment 1-10) dropped that frame
    notes = card["sample_notes"]["A01N01-L_0001"]
    assert any("infinite" in n for n in notes)
    assert H5Samples(out).num_frames[0] == 9
    assert verify(out) == []


def test_non_finite_and_impossible_values_are_nan():
    x = np.array([[[1.0, np.inf, 2.0]] * 25, [[-np.inf, 0, 0]] * 25, [[1.5e39, 0, 0]] * 25,
                  [[0, 0, MAX_ABS_M + 1]] * 25, [[0, -MAX_ABS_M, 3.0]] * 25, [[np.nan, 0, 0]] * 25])
    out, n_nan, n_bad = to_float32_finite(x)
    assert out.dtype == np.float32 and (n_nan, n_bad) == (1, 4)
    assert np.isnan(out[:4]).any(axis=(1, 2)).all() and np.isfinite(out[4]).all()


def ntu_text_with(values):
    """A one-body 20-frame NTU file whose frame k holds `values[k]` (a string) at joint 3 x."""
    lines = ["20"]
    for f in range(20):
        lines += ["1", "72057594037931101 0 1 1 1 1 0 0 0 2", "25"]
        for j in range(25):
            x = values.get(f, "0.5") if j == 3 else f"{0.1 + 0.01 * j:f}"
            lines.append(f"{x} {0.2 + 0.02 * j:f} 3.000000 1 1 1 1 0 0 0 0 2")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("value", ["inf", "-inf", "INF", "1.5E+39", "-4.2e+38", "150.0", "nan"])
def test_ntu_reader_and_ingest_drop_frames_with_bad_values(tmp_path, value):
    text = ntu_text_with({4: value, 11: value})
    sk = parse_ntu(text.encode())
    assert np.isnan(sk.bodies[0].joints[[4, 11]]).any(axis=(1, 2)).all()
    assert np.isfinite(np.delete(sk.bodies[0].joints, [4, 11], axis=0)).all()
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "S001C001P001R001A006.skeleton").write_text(text)
    (raw / "S001C001P001R001A007.skeleton").write_text(ntu_text_with({f: value for f in range(20)}))
    out = ingest("synthetic", [raw], tmp_path / "data")
    h5 = H5Samples(out)
    assert h5.ids == ["S001C001P001R001A006"] and h5.num_frames.tolist() == [18]
    assert np.isfinite(h5.read(0)).all()
    card = card_of(out)
    assert any("frames" in n and "dropped" in n for n in card["sample_notes"]["S001C001P001R001A006"])
    assert [s["file"] for s in card["skipped"]] == ["S001C001P001R001A007.skeleton"]
    assert "no frame left" in card["skipped"][0]["reason"]


def test_pku_reader_reads_inf_as_nan():
    v = np.full((3, 150), 0.5)
    text = "\n".join(" ".join(f"{x:f}" for x in row) for row in v).replace("0.500000", "inf", 1)
    out = parse_pku_skeleton(text.encode())
    assert np.isnan(out[0]).any() and np.isfinite(out[1:]).all()


def test_pipeline_refuses_a_non_finite_sample(tmp_path):
    import h5py

    from slim.pipeline.sources import H5Dataset, NonFiniteSample, _decode
    raw = tmp_path / "raw"
    raw.mkdir()
    for k in range(3):
        small_ntu(raw / f"S001C001P001R001A00{k + 1}.skeleton", seed=k)
    out = ingest("synthetic", [raw], tmp_path / "data")
    with h5py.File(out / "samples.h5", "r+") as f:       # an older ingest / a changed file
        f["joints"][25, 3, 0] = np.inf
    ds = H5Dataset(out)
    assert np.isfinite(ds[0]["joints"]).all()
    with pytest.raises(NonFiniteSample, match="S001C001P001R001A002"):
        ds[1]
    buf = io.BytesIO()
    np.save(buf, np.full((2, 1, 25, 3), np.nan, np.float32))
    with pytest.raises(NonFiniteSample, match="XYZ"):
        _decode({"npy": buf.getvalue(), "json": json.dumps({"id": "XYZ", "label": 0, "index": 0})})


def test_non_finite_loss_names_inputs_and_does_not_blame_the_lr():
    from slim.train import distributed as du
    from slim.train.trainer import LOSS_KEYS, TrainingError, _non_finite, non_finite_inputs
    d = du.Dist(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    nan = float("nan")
    out = {"loss": nan, "mfm": nan, "glcl": 1.0, "koleo": 0.0}
    # A window of two steps: step 7 fine, step 8 non-finite (the one reported).
    losses = torch.tensor([[1.0, 1.0, 1.0, 0.0], [out[k] for k in LOSS_KEYS]])
    finite = torch.isfinite(losses).all(1).float()
    g = torch.zeros(3, 4, 2, 25, 3)
    batch = {"global": g.clone(), "locals": [{"x": torch.zeros(3, 2, 2, 25, 3)}], "ids": ["a", "b", "c"]}
    batch["locals"][0]["x"][1, 0, 0, 0, 0] = math.inf
    flags = non_finite_inputs(batch)
    assert flags.tolist() == [False, True, False]
    ids = [["x", "y", "z"], batch["ids"]]
    with pytest.raises(TrainingError) as e:
        _non_finite(d, 7, losses, finite, ids, [torch.zeros(3, dtype=torch.bool), flags])
    assert "step 8" in str(e.value) and "['b']" in str(e.value)
    assert "lower" not in e.value.hint and "re-ingest" in e.value.hint
    batch["locals"][0]["x"][1] = 0
    with pytest.raises(TrainingError) as e:
        _non_finite(d, 7, losses, finite, ids, [torch.zeros(3, dtype=torch.bool), non_finite_inputs(batch)])
    assert "'a', 'b', 'c'" in str(e.value) and "lower optim.base_lr" in e.value.hint
