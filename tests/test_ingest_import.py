"""Importing the preprocessed NTU files users already have (issue 14): pyskl / MMAction2
pickles, CTR-GCN npz, ST-GCN / 2s-AGCN npy. Tiny files of each format are built from
known arrays and imported back exactly; bad input is an error or a reported skip; a
pickle that would run code runs nothing; the six real NTU fixtures agree across formats."""
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fixtures_path import FIX
from slim.ingest import ntu_names
from slim.ingest.center import center_joints
from slim.ingest.cli import main as ingest_cli
from slim.ingest.from_ctrgcn import reference_order
from slim.ingest.from_stgcn import repetition_length
from slim.ingest.h5store import H5Samples
from slim.ingest.importer import SourceError, run_import
from slim.ingest.manifest import read_manifest
from slim.ingest.run import ingest
from slim.ingest.safe_load import UnsafeSource, load_pickle

RNG = np.random.default_rng(7)


def _person(t):
    """[T, 25, 3] values exact in float16 (multiples of 1/64 below 4): no rounding."""
    return (np.round(RNG.uniform(0.5, 3.5, size=(t, 25, 3)) * 64) / 64).astype(np.float32)


# Known samples: a one-person sample, a duplicated actor, two persons (actor 2 absent in
# the first 3 frames).
ONE = ("S001C001P001R001A001", 0, _person(10)[:, None])
_p = _person(8)
DUP = ("S001C002P003R001A002", 1, np.stack([_p, _p], axis=1))
_two = np.stack([_person(12), _person(12)], axis=1)
_two[:3, 1] = 0
TWO = ("S002C003P002R002A050", 49, _two)
SAMPLES = [ONE, DUP, TWO]
#: what must be stored: persons and frames, our centring applied.
WANT = {ONE[0]: ONE[2], DUP[0]: DUP[2][:, :1], TWO[0]: TWO[2]}


def _stored(folder):
    h5 = H5Samples(Path(folder) / "samples.h5")
    return {sid: h5.read(i) for i, sid in enumerate(h5.ids)}


def _check(folder, want=WANT, centred_here=True):
    got = _stored(folder)
    assert sorted(got) == sorted(want)
    for sid, x in want.items():
        expect = center_joints(x) if centred_here else x
        assert got[sid].shape == expect.shape, sid
        np.testing.assert_array_equal(got[sid], expect, err_msg=sid)


def _pyskl(path, samples=SAMPLES, dtype=np.float16, split=None, protocol=2):
    anns = [dict(frame_dir=n, label=lab, total_frames=x.shape[0],
                 keypoint=x.transpose(1, 0, 2, 3).astype(dtype)) for n, lab, x in samples]
    names = [n for n, _, _ in samples if ntu_names.parse_name(n)]
    if split is None:
        perf = [ntu_names.parse_name(n)["performer"] for n in names]
        cam = [ntu_names.parse_name(n)["camera"] for n in names]
        split = dict(xsub_train=[n for n, p in zip(names, perf) if p in ntu_names.XSUB_TRAIN_60],
                     xsub_val=[n for n, p in zip(names, perf) if p not in ntu_names.XSUB_TRAIN_60],
                     xview_train=[n for n, c in zip(names, cam) if c != 1],
                     xview_val=[n for n, c in zip(names, cam) if c == 1])
    with open(path, "wb") as fh:
        pickle.dump(dict(split=split, annotations=anns), fh, protocol=protocol)
    return path


# ---------------------------------------------------------------- pyskl

@pytest.mark.parametrize("protocol", [2, 5])
def test_pyskl_round_trip_persons_frames_splits_and_card(tmp_path, protocol):
    src = _pyskl(tmp_path / "ntu60_3danno.pkl", protocol=protocol)
    out, card = run_import("ntu60", "pyskl", [str(src)], str(tmp_path / "data"), log=lambda s: None)
    _check(out)
    table, meta = read_manifest(out)
    rows = {r["id"]: r for r in table.to_pylist()}
    assert rows[DUP[0]]["num_persons"] == 1 and rows[TWO[0]]["num_persons"] == 2
    assert rows[TWO[0]]["num_frames"] == 12 and rows[TWO[0]]["action"] == 50
    assert rows[ONE[0]]["xsub_train"] and not rows[DUP[0]]["xsub_train"]
    assert rows[ONE[0]]["xview_test"] and rows[TWO[0]]["xview_train"]
    s = card["source"]
    assert s["format"] == "pyskl" and s["files"][0]["sha256"] and "float16" in s["preprocessing_applied_by_source"]
    assert s["entries_seen"] == 3 == s["samples_written"] + s["entries_skipped"]
    assert card["sample_notes"][DUP[0]] == ["second actor slot duplicates the first: stored as one person"]
    assert not card["warnings"]


def test_pyskl_split_disagreement_is_reported_not_resolved(tmp_path):
    split = dict(xsub_train=[ONE[0], DUP[0], TWO[0]], xsub_val=[], xview_train=[], xview_val=[])
    out, card = run_import("ntu60", "pyskl", [str(_pyskl(tmp_path / "a.pkl", split=split))],
                           str(tmp_path / "data"), log=lambda s: None)
    assert card["source"]["split_disagreements"] == {"xsub_train": 1, "xsub_test": 1, "xview_train": 2, "xview_test": 1}
    assert any("xsub_train: 1 samples" in w and DUP[0] in w for w in card["warnings"])
    rows = {r["id"]: r for r in read_manifest(out)[0].to_pylist()}
    assert not rows[DUP[0]]["xsub_train"]  # the official rule is what is stored


def test_pyskl_bad_entries_are_skips_naming_the_sample(tmp_path):
    nan = _person(5)[:, None].copy()
    nan[2, 0, 3, 1] = np.nan
    huge = _person(4)[:, None].copy()
    huge[0, 0, 0, 0] = 1e6
    bad = SAMPLES + [("S001C001P001R001A003", 7, _person(5)[:, None]),          # label vs name
                     ("X001", 0, _person(5)[:, None]),                          # not an NTU name
                     ("S018C001P001R001A001", 0, _person(5)[:, None]),          # outside ntu60
                     ("S001C001P001R001A004", 3, nan),                          # NaN frame dropped
                     ("S001C001P001R001A007", 6, huge)]                         # |x| > 100 m
    src = _pyskl(tmp_path / "a.pkl", samples=bad, dtype=np.float32)
    obj = load_pickle(src)
    obj["annotations"] += [None, {"frame_dir": "S001C001P001R001A008", "label": 7,
                                  "keypoint": np.zeros((3, 4, 25, 3), np.float32)},
                           {"frame_dir": "S001C001P001R001A009", "label": 200,
                            "keypoint": _person(3)[None]}, dict(obj["annotations"][0])]
    with open(src, "wb") as fh:
        pickle.dump(obj, fh)
    out, card = run_import("ntu60", "pyskl", [str(src)], str(tmp_path / "data"), log=lambda s: None)
    reasons = {s["file"]: s["reason"] for s in card["skipped"]}
    assert "disagrees with action A003" in reasons["S001C001P001R001A003"]
    assert "not SsssCcccPpppRrrrAaaa" in reasons["X001"]
    assert "outside ntu60" in reasons["S018C001P001R001A001"]
    assert "NoneType" in reasons["a.pkl#8"]
    assert "keypoint shape (3, 4, 25, 3)" in reasons["S001C001P001R001A008"]
    assert "out of range" in reasons["S001C001P001R001A009"]
    assert "appears twice" in reasons[ONE[0]]
    s = card["source"]
    assert s["entries_seen"] == 12 and s["samples_written"] == 5 and s["entries_skipped"] == 7
    stored = _stored(out)
    assert stored["S001C001P001R001A004"].shape[0] == 4  # the NaN frame is dropped
    assert stored["S001C001P001R001A007"].shape[0] == 3
    assert any("non-finite" in n for n in card["sample_notes"]["S001C001P001R001A007"])


def test_malicious_pickle_runs_nothing_and_cli_says_why(tmp_path):
    flag = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {flag}",))

    src = tmp_path / "evil.pkl"
    src.write_bytes(pickle.dumps({"annotations": [Evil()], "split": {}}))
    with pytest.raises(UnsafeSource, match="refused to load global (posix|os|nt).system"):
        load_pickle(src)
    r = CliRunner().invoke(ingest_cli, ["ntu60", "--from", "pyskl", str(src), "--out", str(tmp_path / "d")])
    assert r.exit_code == 2 and "error:" in r.output and "refused" in r.output and "hint:" in r.output
    assert not flag.exists() and not (tmp_path / "d" / "ntu60" / "card.json").exists()


@pytest.mark.parametrize("case", ["truncated", "wrong_keys", "not_pickle", "missing"])
def test_pyskl_broken_files_are_clear_errors_exit_2(tmp_path, case):
    src = _pyskl(tmp_path / "a.pkl")
    if case == "truncated":
        src.write_bytes(src.read_bytes()[:-200])
    elif case == "wrong_keys":
        src.write_bytes(pickle.dumps({"annos": []}))
    elif case == "not_pickle":
        src.write_text("hello")
    else:
        src = tmp_path / "nope.pkl"
    r = CliRunner().invoke(ingest_cli, ["ntu60", "--from", "pyskl", str(src), "--out", str(tmp_path / "d")])
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and "hint:" in r.output and "Traceback" not in r.output
    assert src.name in r.output


# ---------------------------------------------------------------- CTR-GCN

def _ctrgcn_x(samples, t=300):
    x = np.zeros((len(samples), t, 150), np.float32)
    for i, (_, _, j) in enumerate(samples):
        c = center_joints(j)
        if c.shape[1] == 1:
            c = np.concatenate([c, np.zeros_like(c)], axis=1)  # align_frames: zeros_like
        x[i, :c.shape[0]] = c.reshape(c.shape[0], 150)
    return x


def _ctrgcn(path, samples, names, bench="xsub", n_cls=60, dup_single=False, compressed=False):
    by = {n: s for s in samples for n in [s[0]]}
    train, test = reference_order(names, bench, "ntu60" if n_cls == 60 else "ntu120")
    arrays = {}
    for part, ns in (("train", train), ("test", test)):
        ss = [by[n] for n in ns]
        x = _ctrgcn_x(ss)
        if dup_single:
            for i, s in enumerate(ss):
                if s[2].shape[1] == 1:
                    x[i, :, 75:] = x[i, :, :75]
        y = np.zeros((len(ss), n_cls))
        y[np.arange(len(ss)), [s[1] for s in ss]] = 1
        arrays[f"x_{part}"], arrays[f"y_{part}"] = x, y
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def test_ctrgcn_order_follows_get_indices():
    names = ["S001C001P003R001A001", "S001C002P001R001A001", "S001C003P002R001A001",
             "S001C001P002R001A002", "S001C003P001R001A002"]
    assert reference_order(names, "xsub", "ntu60") == (
        ["S001C002P001R001A001", "S001C003P001R001A002", "S001C003P002R001A001",
         "S001C001P002R001A002"], ["S001C001P003R001A001"])
    assert reference_order(names, "xview", "ntu60") == (
        ["S001C002P001R001A001", "S001C003P002R001A001", "S001C003P001R001A002"],
        ["S001C001P003R001A001", "S001C001P002R001A002"])


@pytest.mark.parametrize("dup", [False, True])
def test_ctrgcn_round_trip_with_names(tmp_path, dup):
    names = sorted(n for n, _, _ in SAMPLES)
    (tmp_path / "skes_available_name.txt").write_text("\n".join(names) + "\n")
    src = _ctrgcn(tmp_path / "NTU60_CS.npz", SAMPLES, names, dup_single=dup)
    out, card = run_import("ntu60", "ctrgcn", [str(src)], str(tmp_path / "data"),
                           names_file=str(tmp_path / "skes_available_name.txt"), log=lambda s: None)
    _check(out, {k: center_joints(v) for k, v in WANT.items()}, centred_here=False)
    assert card["source"]["names_recovered"] and card["source"]["entries_seen"] == 3
    assert card["benchmarks"]["xview"] == {"train": 2, "test": 1}
    assert "not applied" not in card["source"]["normalization_applied_here"]
    assert card["source"]["normalization_applied_here"].startswith("none: the source is already centred")


def test_ctrgcn_without_names_imports_with_ids_file_splits_and_a_warning(tmp_path):
    names = sorted(n for n, _, _ in SAMPLES)
    src = _ctrgcn(tmp_path / "NTU60_CS.npz", SAMPLES, names)
    out, card = run_import("ntu60", "ctrgcn", [str(src)], str(tmp_path / "data"), log=lambda s: None)
    table, meta = read_manifest(out)
    assert "performer" not in table.column_names and meta["benchmarks"] == ["xsub"]
    assert table.column("id").to_pylist() == ["NTU60_CS_train_000000", "NTU60_CS_train_000001",
                                              "NTU60_CS_test_000000"]
    assert table.column("xsub_train").to_pylist() == [True, True, False]
    assert any("no sample names" in w for w in card["warnings"])
    assert sorted(table.column("num_persons").to_pylist()) == [1, 1, 2]


def test_ctrgcn_wrong_names_count_or_labels_are_not_used(tmp_path):
    names = sorted(n for n, _, _ in SAMPLES)
    src = _ctrgcn(tmp_path / "NTU60_CS.npz", SAMPLES, names)
    (tmp_path / "n.txt").write_text("\n".join(names[:2]) + "\n")
    _, card = run_import("ntu60", "ctrgcn", [str(src)], str(tmp_path / "d1"),
                         names_file=str(tmp_path / "n.txt"), log=lambda s: None)
    assert not card["source"]["names_recovered"] and any("names not recovered" in w for w in card["warnings"])


@pytest.mark.parametrize("case", ["keys", "shape", "classes", "truncated", "object", "name"])
def test_ctrgcn_bad_files_exit_2(tmp_path, case):
    src = tmp_path / "NTU60_CS.npz"
    x, y = np.zeros((2, 300, 150), np.float32), np.eye(60)[:2]
    if case == "keys":
        np.savez(src, x_train=x, y_train=y)
    elif case == "shape":
        np.savez(src, x_train=x[:, :, :75], y_train=y, x_test=x, y_test=y)
    elif case == "classes":
        np.savez(src, x_train=x, y_train=np.eye(120)[:2], x_test=x, y_test=y)
    elif case == "truncated":
        np.savez(src, x_train=x, y_train=y, x_test=x, y_test=y)
        src.write_bytes(src.read_bytes()[:200000])
    elif case == "object":
        np.savez(src, x_train=np.array([None, 1], dtype=object), y_train=y, x_test=x, y_test=y)
    else:
        src = tmp_path / "NTU60.npz"
        np.savez(src, x_train=x, y_train=y, x_test=x, y_test=y)
    r = CliRunner().invoke(ingest_cli, ["ntu60", "--from", "ctrgcn", str(src), "--out", str(tmp_path / "d")])
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and "hint:" in r.output and "Traceback" not in r.output


def test_ctrgcn_compressed_npz_streams_and_equals_the_stored_one(tmp_path):
    from slim.ingest.safe_load import Rows, ZipRows, npz_rows
    names = sorted(n for n, _, _ in SAMPLES)
    (tmp_path / "n.txt").write_text("\n".join(names) + "\n")
    outs = {}
    for compressed in (False, True):
        d = tmp_path / ("z" if compressed else "s")
        d.mkdir()
        src = _ctrgcn(d / "NTU60_CS.npz", SAMPLES, names, compressed=compressed)
        rows = npz_rows(src, "x_train")
        assert isinstance(rows, ZipRows if compressed else Rows) and rows.shape == (2, 300, 150)
        out, card = run_import("ntu60", "ctrgcn", [str(src)], str(d / "data"),
                               names_file=str(tmp_path / "n.txt"), log=lambda s: None)
        _check(out, {k: center_joints(v) for k, v in WANT.items()}, centred_here=False)
        outs[compressed] = card["outputs"]["samples.h5"]
    assert outs[True] == outs[False]   # byte-identical samples.h5


def test_zip_rows_reads_a_deflated_member_row_by_row(tmp_path):
    """A deflated member is never loaded whole: reading all rows of a 36 MB member
    allocates about one row (tracemalloc sees numpy's and zlib's buffers)."""
    import tracemalloc
    from slim.ingest.safe_load import npz_rows
    x = np.zeros((200, 300, 150), np.float32)
    x[:, :5] = np.arange(200, dtype=np.float32)[:, None, None]
    src = tmp_path / "NTU60_CS.npz"
    np.savez_compressed(src, x_train=x, y_train=np.eye(60)[:200 % 60], x_test=x[:1], y_test=np.eye(60)[:1])
    rows = npz_rows(src, "x_train")
    tracemalloc.start()
    try:
        for i in (0, 1, 2, 150, 199, 3):           # forward skips and one step back
            np.testing.assert_array_equal(rows[i], x[i])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, peak                     # the member is 36 MB
    # damaged deflate stream: an error naming the file, member and row, not a crash
    data = bytearray(src.read_bytes())
    info = zipfile.ZipFile(src).getinfo("x_train.npy")
    mid = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[mid:mid + 64] = b"\xff" * 64
    src.write_bytes(bytes(data))
    bad = npz_rows(src, "x_train")
    with pytest.raises(UnsafeSource, match=r"member 'x_train.npy' row \d+ cannot be read"):
        for i in range(bad.shape[0]):
            bad[i]


def test_ctrgcn_damaged_compressed_npz_exit_2(tmp_path):
    names = sorted(n for n, _, _ in SAMPLES)
    src = _ctrgcn(tmp_path / "NTU60_CS.npz", SAMPLES, names, compressed=True)
    data = bytearray(src.read_bytes())
    info = zipfile.ZipFile(src).getinfo("x_train.npy")
    start = info.header_offset + 30 + len(info.filename)
    data[start + info.compress_size // 2: start + info.compress_size // 2 + 32] = b"\xff" * 32
    src.write_bytes(bytes(data))
    r = CliRunner().invoke(ingest_cli, ["ntu60", "--from", "ctrgcn", str(src), "--out", str(tmp_path / "d")])
    assert r.exit_code == 2, r.output
    assert "NTU60_CS.npz" in r.output and "x_train.npy" in r.output and "hint:" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "d" / "ntu60" / "card.json").exists()


# ---------------------------------------------------------------- ST-GCN / 2s-AGCN

def _stgcn(folder, samples, bench="xsub", prenorm=False, t=300):
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"train": [], "val": []}
    for s in samples:
        f = ntu_names.parse_name(s[0])
        train = f["performer"] in ntu_names.XSUB_TRAIN_60 if bench == "xsub" else f["camera"] != 1
        parts["train" if train else "val"].append(s)
    for part, ss in parts.items():
        arr = np.zeros((len(ss), 3, t, 25, 2), np.float32)
        for i, (_, _, j) in enumerate(ss):
            j = j.copy()
            if prenorm:
                j = j - j[:, :1, 1:2]                 # per-frame centring on actor 1's joint 1
                full = np.zeros((t,) + j.shape[1:], np.float32)
                for m in range(j.shape[1]):
                    p = j[:, m][(j[:, m] != 0).any(axis=(1, 2))]
                    if len(p):
                        reps = -(-t // len(p))
                        full[:, m] = np.tile(p, (reps, 1, 1))[:t]
                j = full
            arr[i, :, :j.shape[0], :, :j.shape[1]] = j.transpose(3, 0, 2, 1)
        suffix = "_data_joint.npy"
        np.save(folder / f"{part}{suffix}", arr)
        with open(folder / f"{part}_label.pkl", "wb") as fh:
            pickle.dump(([s[0] + ".skeleton" for s in ss], [s[1] for s in ss]), fh)
    return folder


def test_stgcn_round_trip_zero_padded(tmp_path):
    src = _stgcn(tmp_path / "xsub", SAMPLES)
    r = CliRunner().invoke(ingest_cli, ["ntu60", "--from", "stgcn", str(src), "--out", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    _check(tmp_path / "d" / "ntu60")
    card = json.loads((tmp_path / "d" / "ntu60" / "card.json").read_text())
    assert card["source"]["benchmark_of_folder"] == "xsub" and not card["source"]["split_disagreements"]


def test_stgcn_prenormalized_repetition_padding_is_cut(tmp_path):
    one = ("S001C001P001R001A001", 0, _person(7)[:, None])
    src = _stgcn(tmp_path / "xview", [one, DUP], bench="xview", prenorm=True)
    out, card = run_import("ntu60", "stgcn", [str(src)], str(tmp_path / "d"), log=lambda s: None)
    got = _stored(out)
    assert got[one[0]].shape == (7, 1, 25, 3) and got[DUP[0]].shape == (8, 1, 25, 3)
    assert (got[one[0]][:, 0, 1] == 0).all()
    assert "2s-AGCN" in card["source"]["preprocessing_applied_by_source"]


def test_repetition_length():
    p = _person(5)
    assert repetition_length(np.concatenate([p, p, p[:2]])) == 5
    assert repetition_length(p) == 5 and repetition_length(np.zeros((4, 25, 3))) == 0


def test_stgcn_split_disagreement_is_reported_not_resolved(tmp_path):
    src = _stgcn(tmp_path / "xsub", SAMPLES)
    # swap the xsub-test sample (DUP, performer 3) with a training one (ONE, performer 1)
    arr = {p: np.load(src / f"{p}_data_joint.npy") for p in ("train", "val")}
    lab = {}
    for p in ("train", "val"):
        with open(src / f"{p}_label.pkl", "rb") as fh:
            lab[p] = pickle.load(fh)
    assert lab["train"][0][0] == ONE[0] + ".skeleton" and lab["val"][0] == [DUP[0] + ".skeleton"]
    new = {"train": (arr["val"][:1], arr["train"][1:]), "val": (arr["train"][:1],)}
    np.save(src / "train_data_joint.npy", np.concatenate(new["train"]))
    np.save(src / "val_data_joint.npy", new["val"][0])
    with open(src / "train_label.pkl", "wb") as fh:
        pickle.dump((lab["val"][0] + lab["train"][0][1:], lab["val"][1] + lab["train"][1][1:]), fh)
    with open(src / "val_label.pkl", "wb") as fh:
        pickle.dump((lab["train"][0][:1], lab["train"][1][:1]), fh)
    out, card = run_import("ntu60", "stgcn", [str(src)], str(tmp_path / "d"), log=lambda s: None)
    assert card["source"]["split_disagreements"] == {"xsub_train": 2, "xsub_test": 2}
    assert any("xsub_train: 2 samples" in w and DUP[0] in w and ONE[0] in w for w in card["warnings"])
    rows = {r["id"]: r for r in read_manifest(out)[0].to_pylist()}
    assert rows[DUP[0]]["xsub_test"] and rows[ONE[0]]["xsub_train"]     # the official rule
    _check(out)


def test_stgcn_truncated_npy_exit_2(tmp_path):
    src = _stgcn(tmp_path / "xsub", SAMPLES)
    data = src / "train_data_joint.npy"
    data.write_bytes(data.read_bytes()[:-1000])
    r = CliRunner().invoke(ingest_cli, ["ntu60", "--from", "stgcn", str(src), "--out", str(tmp_path / "d")])
    assert r.exit_code == 2, r.output
    assert "train_data_joint.npy" in r.output and "hint:" in r.output and "Traceback" not in r.output


def test_stgcn_mismatched_labels_exit_2(tmp_path):
    src = _stgcn(tmp_path / "xsub", SAMPLES)
    with open(src / "val_label.pkl", "wb") as fh:
        pickle.dump((["a"], [0, 1]), fh)
    r = CliRunner().invoke(ingest_cli, ["ntu60", "--from", "stgcn", str(src), "--out", str(tmp_path / "d")])
    assert r.exit_code == 2 and "val_label.pkl" in r.output and "hint:" in r.output


# ---------------------------------------------------------------- real fixtures agree

@pytest.fixture(scope="module")
def raw_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("agree")
    centred = ingest("ntu60", [FIX / "ntu"], root / "c", workers=0)
    plain = ingest("ntu60", [FIX / "ntu"], root / "p", workers=0, center=False)
    return _stored(centred), _stored(plain), centred


def _same_columns(imported, raw_folder):
    """The manifest of an import and of the raw ingest agree on ids, labels, frames,
    persons, name fields, every split and every few-label subset column."""
    a, b = read_manifest(imported)[0], read_manifest(raw_folder)[0]
    cols = [c for c in b.column_names if c.startswith(("xsub_", "xview_"))]
    assert any(c.count("_") == 2 for c in cols)                 # subsets are there
    for c in ["id", "label", "num_frames", "num_persons", "performer", "camera", *cols]:
        assert a.column(c).to_pylist() == b.column(c).to_pylist(), c


def test_fixtures_agree_across_all_three_formats(raw_pair, tmp_path):
    centred, plain, raw_folder = raw_pair
    assert len(centred) == 6
    samples = [(sid, int(sid[-3:]) - 1, x) for sid, x in sorted(plain.items())]
    # pyskl, float32 keypoints (the format's layout; the distributed files are float16)
    out, _ = run_import("ntu60", "pyskl", [str(_pyskl(tmp_path / "a.pkl", samples, np.float32))],
                        str(tmp_path / "py"), log=lambda s: None)
    _check(out, centred, centred_here=False)
    _same_columns(out, raw_folder)
    # ST-GCN zero-padded npy
    out, _ = run_import("ntu60", "stgcn", [str(_stgcn(tmp_path / "xsub", samples))],
                        str(tmp_path / "st"), log=lambda s: None)
    _check(out, centred, centred_here=False)
    _same_columns(out, raw_folder)
    # CTR-GCN npz from the raw ingest's centred samples, names by the reference order
    names = sorted(centred)
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    csamples = [(sid, int(sid[-3:]) - 1, x) for sid, x in sorted(centred.items())]
    for bench, fname in (("xsub", "NTU60_CS.npz"), ("xview", "NTU60_CV.npz")):
        _ctrgcn(tmp_path / fname, csamples, names, bench=bench)
    out, card = run_import("ntu60", "ctrgcn", [str(tmp_path / "NTU60_CS.npz"), str(tmp_path / "NTU60_CV.npz")],
                           str(tmp_path / "ct"), names_file=str(tmp_path / "names.txt"), log=lambda s: None)
    _check(out, centred, centred_here=False)
    _same_columns(out, raw_folder)
    assert card["source"]["names_recovered"]
    # the same npz written compressed (np.savez_compressed) gives the same dataset
    (tmp_path / "z").mkdir()
    for bench, fname in (("xsub", "NTU60_CS.npz"), ("xview", "NTU60_CV.npz")):
        _ctrgcn(tmp_path / "z" / fname, csamples, names, bench=bench, compressed=True)
    _, zcard = run_import("ntu60", "ctrgcn", [str(tmp_path / "z" / "NTU60_CS.npz"),
                                              str(tmp_path / "z" / "NTU60_CV.npz")],
                          str(tmp_path / "ctz"), names_file=str(tmp_path / "names.txt"), log=lambda s: None)
    assert zcard["outputs"] == card["outputs"]


# ---------------------------------------------------------------- official zip archives

def test_ntu_zip_archive_reads_members_in_place_and_skips_a_damaged_one(tmp_path):
    files = sorted((FIX / "ntu").glob("*.skeleton"))
    archive = tmp_path / "nturgbd_skeletons_s001_to_s017.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for f in files:
            z.write(f, f"nturgb+d_skeletons/{f.name}")
    blob = bytearray(archive.read_bytes())
    victim = files[2].read_bytes()
    at = bytes(blob).find(victim[:200]) + 150
    blob[at] = ord("7") if blob[at] != ord("7") else ord("3")  # CRC no longer matches
    archive.write_bytes(bytes(blob))
    r = CliRunner().invoke(ingest_cli, ["ntu60", "--raw", str(archive), "--out", str(tmp_path / "z"),
                                        "--workers", "0"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "z" / "ntu60" / "card.json").read_text())
    assert [s["file"] for s in card["skipped"]] == [files[2].name]
    assert "damaged archive member" in card["skipped"][0]["reason"]
    folder = _stored(ingest("ntu60", [FIX / "ntu"], tmp_path / "f", workers=0))
    zipped = _stored(tmp_path / "z" / "ntu60")
    assert sorted(zipped) == sorted(set(folder) - {files[2].name[:-9]})
    for sid, x in zipped.items():
        np.testing.assert_array_equal(x, folder[sid])
    assert card["files"][files[0].name] == json.loads(
        (tmp_path / "f" / "ntu60" / "card.json").read_text())["files"][files[0].name]


def test_pku_zip_archives_as_downloaded_match_the_folder_ingest(tmp_path):
    from slim.ingest.synth import SynthConfig, generate
    raw = tmp_path / "pku"
    generate(raw, SynthConfig(classes=4, performers=3, per_class=1, seed=5, format="pku"), progress=False)
    txt = sorted(raw.rglob("*.txt"))
    skel = tmp_path / "PKU_Skeleton_Renew.zip"
    lab = tmp_path / "Train_Label_PKU_final.zip"
    with zipfile.ZipFile(skel, "w") as zs, zipfile.ZipFile(lab, "w") as zl:
        for p in txt:
            is_label = any("label" in q.lower() for q in p.relative_to(raw).parts[:-1])
            (zl if is_label else zs).write(p, p.name)  # members at the archive's root
    folder = _stored(ingest("pku2", [raw], tmp_path / "f", workers=0))
    zipped = _stored(ingest("pku2", [skel, lab], tmp_path / "z", workers=0))
    assert sorted(zipped) == sorted(folder) and len(folder) > 0
    for sid, x in zipped.items():
        np.testing.assert_array_equal(x, folder[sid])
    card = json.loads((tmp_path / "z" / "pku2" / "card.json").read_text())
    assert not card["skipped"] and not any("not found" in w for w in card["warnings"])
    assert card["files"] == json.loads((tmp_path / "f" / "pku2" / "card.json").read_text())["files"]


def test_pyskl_float16_as_distributed_agrees_within_float16_rounding(raw_pair, tmp_path):
    centred, plain, _ = raw_pair
    samples = [(sid, int(sid[-3:]) - 1, x) for sid, x in sorted(plain.items())]
    out, _ = run_import("ntu60", "pyskl", [str(_pyskl(tmp_path / "a.pkl", samples, np.float16))],
                        str(tmp_path / "py"), log=lambda s: None)
    got = _stored(out)
    for sid, x in centred.items():
        assert got[sid].shape == x.shape
        # float16 spacing is 2^-8 m in [4, 8) m: each of a coordinate and the centre is off
        # by at most half of that, so a centred coordinate by at most 2^-8 m.
        np.testing.assert_allclose(got[sid], x, rtol=0, atol=2.0 ** -8)


def test_zip_ingest_resumes_after_an_interruption(tmp_path):
    from slim.ingest.run import IngestConfig, run
    archive = tmp_path / "nturgbd_skeletons_s001_to_s017.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((FIX / "ntu").glob("*.skeleton")):
            z.write(f, f"nturgb+d_skeletons/{f.name}")
    cfg = IngestConfig(dataset="ntu60", raw=(str(archive),), out=str(tmp_path / "d"), workers=0,
                       chunk_files=1)

    class Stop(Exception):
        pass

    def stop(summary):
        raise Stop()
    with pytest.raises(Stop):
        run(cfg, progress=False, log=lambda s: None, on_chunk_done=stop)
    logs = []
    _, card = run(cfg, progress=False, log=logs.append)
    assert any(s.startswith("resuming: 1 of 6 chunks") for s in logs) and card["num_samples"] == 6


@pytest.mark.parametrize("args", [[], ["x.pkl"], ["--from", "pyskl"], ["--from", "pyskl", "a.pkl", "--raw", "d"]])
def test_cli_usage_errors_exit_2_with_a_hint(tmp_path, args):
    r = CliRunner().invoke(ingest_cli, ["ntu60", *args, "--out", str(tmp_path)])
    assert r.exit_code == 2 and "error:" in r.output and "hint:" in r.output, r.output


def test_ntu120_pyskl_and_ctrgcn_csub(tmp_path):
    s120 = [("S018C001P045R001A061", 60, _person(6)[:, None]), ONE,
            ("S019C002P003R002A120", 119, _two.copy())]
    names = [n for n, _, _ in s120]
    split = dict(xsub_train=[n for n in names if ntu_names.parse_name(n)["performer"] in ntu_names.XSUB_TRAIN_120],
                 xsub_val=[n for n in names if ntu_names.parse_name(n)["performer"] not in ntu_names.XSUB_TRAIN_120],
                 xset_train=[n for n in names if ntu_names.parse_name(n)["setup"] % 2 == 0],
                 xset_val=[n for n in names if ntu_names.parse_name(n)["setup"] % 2 == 1])
    out, card = run_import("ntu120", "pyskl", [str(_pyskl(tmp_path / "ntu120_3danno.pkl", s120, split=split))],
                           str(tmp_path / "p"), log=lambda s: None)
    assert card["benchmarks"] == {"xsub": {"train": 2, "test": 1}, "xset": {"train": 1, "test": 2}}
    assert not card["warnings"] and card["num_classes"] == 120
    _check(out, {n: x for n, _, x in s120})
    (tmp_path / "n.txt").write_text("\n".join(sorted(names)) + "\n")
    # data/ntu120/seq_transformation.py's align_frames copies a single actor into slot 2
    src = _ctrgcn(tmp_path / "NTU120_CSub.npz", s120, sorted(names), n_cls=120, dup_single=True)
    out, card = run_import("ntu120", "ctrgcn", [str(src)], str(tmp_path / "c"),
                           names_file=str(tmp_path / "n.txt"), log=lambda s: None)
    assert card["source"]["names_recovered"] and card["benchmarks"]["xset"] == {"train": 1, "test": 2}
    _check(out, {n: center_joints(x) for n, _, x in s120}, centred_here=False)
    assert sorted(read_manifest(out)[0].column("num_persons").to_pylist()) == [1, 1, 2]


def test_import_card_keeps_the_accounting_rules(tmp_path):
    """An import's card passes `slim-ingest verify`'s accounting: its source files are
    its files, and every entry is a sample or a skipped entry with a reason."""
    from slim.ingest.importer import run_import
    from slim.ingest.inventory import check
    src = _pyskl(tmp_path / "ntu60_3danno.pkl")
    out, card = run_import("ntu60", "pyskl", [str(src)], str(tmp_path / "data"))
    assert check(card) == []
    assert card["accounting"]["files_seen"] == card["accounting"]["files_ingested"] == 1
    assert card["source"]["entries_seen"] == card["num_samples"] + len(card["skipped"])
    broken = dict(card, num_samples=card["num_samples"] - 1)
    assert any("entries seen" in p for p in check(broken))
