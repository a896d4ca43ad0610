"""End-to-end ingest: outputs agree, bad files are skipped with reasons, a killed run
resumes, PKU segments, and the synthetic generator's files go through unchanged."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slim.ingest.h5store import H5Samples
from slim.ingest.manifest import read_manifest
from slim.ingest.run import IngestConfig, IngestError, ingest, run
from slim.ingest.verify import verify

from fixtures_path import FIX


def small_ntu(path, n_frames=20, seed=0):
    rng = np.random.default_rng(seed)
    lines = [str(n_frames)]
    for _ in range(n_frames):
        lines += ["1", "72057594037931101 0 1 1 1 1 0 0 0 2", "25"]
        lines += [f"{x:.6f} {y:.6f} {z:.6f} 1 1 1 1 0 0 0 0 2"
                  for x, y, z in rng.uniform(0.1, 3, size=(25, 3))]
    path.write_text("\n".join(lines) + "\n")


def test_fixtures_with_bad_files(tmp_path):
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    for p in (FIX / "ntu").glob("*.skeleton"):
        shutil.copyfile(p, raw / "sub" / p.name)
    good = (FIX / "ntu" / "S001C001P001R001A005.skeleton").read_bytes()
    (raw / "S002C001P001R001A001.skeleton").write_bytes(good[:5000])
    (raw / "S002C001P001R001A002.skeleton").write_bytes(b"")
    (raw / "S002C001P001R001A003.skeleton").write_bytes(bytes(range(256)))
    (raw / "S002C001P001R001A004.skeleton").write_bytes(b"2\n0\n0\n")
    out = ingest("synthetic", [raw], tmp_path / "data", workers=0)
    card = json.loads((out / "card.json").read_text())
    reasons = {s["file"][:20]: s["reason"] for s in card["skipped"]}
    assert reasons == {"S002C001P001R001A001": reasons["S002C001P001R001A001"],
                       "S002C001P001R001A002": "empty file",
                       "S002C001P001R001A003": "binary file (not text)",
                       "S002C001P001R001A004": "no body in any frame"}
    assert "truncated" in reasons["S002C001P001R001A001"]
    assert card["num_samples"] == 6 and card["num_classes"] == 58
    assert verify(out) == []
    h5 = H5Samples(out)
    table, meta = read_manifest(out)
    assert h5.ids == table.column("id").to_pylist() and meta["dataset"] == "synthetic"
    i = h5.ids.index("S001C001P001R001A001")
    x = h5.read(i)
    assert x.shape == (103, 1, 25, 3) and h5.labels[i] == 0
    np.testing.assert_allclose(x[0, 0, 1], 0, atol=0)           # centred on SpineMid
    assert table.column("xview_test").to_pylist()[i] is True     # camera 1
    # corrupting one output is caught
    h5.close()
    tar = sorted((out / "shards").rglob("*.tar"))[0]
    tar.write_bytes(tar.read_bytes()[:-1024])
    assert any("sha256" in p for p in verify(out))


def test_bad_raw_paths(tmp_path):
    with pytest.raises(IngestError, match="no such folder"):
        ingest("ntu60", [tmp_path / "nope"], tmp_path / "d")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="no \\*.skeleton files"):
        ingest("ntu60", [tmp_path / "empty"], tmp_path / "d")


KILLER = """
import os, signal, sys
from slim.ingest.run import IngestConfig, run
done = []
def hook(summary):
    done.append(summary)
    if len(done) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
run(IngestConfig("synthetic", (sys.argv[1],), sys.argv[2], workers=0), progress=False,
    log=lambda s: None, on_chunk_done=hook)
"""


def test_sigkill_then_resume(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for k in range(20):
        small_ntu(raw / f"S001C00{1 + k % 3}P00{1 + k % 4}R{k:03d}A00{1 + k % 5}.skeleton", seed=k)
    proc = subprocess.run([sys.executable, "-c", KILLER, str(raw), str(tmp_path / "data")])
    assert proc.returncode == -9
    work = tmp_path / "data" / "synthetic" / ".work"
    finished = sorted(work.glob("chunk-*.npz"))
    assert len(finished) == 3 and not list(work.glob("*.tmp"))
    logs, parsed = [], []
    run(IngestConfig("synthetic", (str(raw),), str(tmp_path / "data"), workers=0),
        progress=False, log=logs.append, on_chunk_done=parsed.append)
    assert "resuming: 3 of 10 chunks already parsed" in logs    # 20 files, 2 a chunk
    assert sorted(s["k"] for s in parsed) == list(range(3, 10))
    out = tmp_path / "data" / "synthetic"
    assert verify(out) == [] and not work.exists()
    assert len(H5Samples(out)) == 20
    logs.clear()
    run(IngestConfig("synthetic", (str(raw),), str(tmp_path / "data"), workers=0),
        progress=False, log=logs.append)
    assert "already complete" in logs[0]


def test_interrupted_ingest_over_a_finished_one_leaves_no_stale_card(tmp_path):
    """A finished dataset of inputs A, then an ingest of inputs B into the same folder that
    stops midway: A's card must be gone, so A's command builds again instead of saying
    "complete" over B's half-written outputs."""
    raws = {}
    for name, n in (("a", 6), ("b", 8)):
        raws[name] = tmp_path / name
        raws[name].mkdir()
        for k in range(n):
            small_ntu(raws[name] / f"S001C00{1 + k % 3}P00{1 + k % 4}R{k:03d}A00{1 + k % 5}.skeleton",
                      seed=k + (100 if name == "b" else 0))
    data = tmp_path / "data"
    run(IngestConfig("synthetic", (str(raws["a"]),), str(data), workers=0), progress=False,
        log=lambda m: None)
    card = data / "synthetic" / "card.json"
    assert card.is_file()

    def stop(summary):
        raise RuntimeError("stopped")
    with pytest.raises(RuntimeError, match="stopped"):
        run(IngestConfig("synthetic", (str(raws["b"]),), str(data), workers=0), progress=False,
            log=lambda m: None, on_chunk_done=stop)
    assert not card.exists()
    logs = []
    run(IngestConfig("synthetic", (str(raws["a"]),), str(data), workers=0), progress=False,
        log=logs.append)
    assert not any("already complete" in m for m in logs)
    assert verify(data / "synthetic") == [] and len(H5Samples(data / "synthetic")) == 6


def test_pku_segments(tmp_path):
    (tmp_path / "PKU_Skeleton_Renew").mkdir()
    (tmp_path / "Train_Label_PKU_final").mkdir()
    shutil.copyfile(FIX / "pku" / "A10N08-L.txt", tmp_path / "PKU_Skeleton_Renew" / "A10N08-L.txt")
    (tmp_path / "Train_Label_PKU_final" / "A10N08-L.txt").write_text(
        "12,100,200,1\n3,330,300,2,\n51,1000,1100,1\n")
    out = ingest("pku2", [tmp_path], tmp_path / "data")
    card = json.loads((out / "card.json").read_text())
    table, meta = read_manifest(out)
    assert table.column("id").to_pylist() == ["A10N08-L_0001", "A10N08-L_0002", "A10N08-L_0003"]
    assert table.column("label").to_pylist() == [11, 2, 50]
    assert table.column("num_frames").to_pylist() == [101, 31, 41]
    assert table.column("num_persons").to_pylist() == [1, 2, 2]
    assert table.column("xsub_train").to_pylist() == [True] * 3    # N08 is not a test video
    assert meta["num_classes"] == 51 and any("234-video" in w for w in card["warnings"])
    assert verify(out) == []
    from click.testing import CliRunner

    from slim.ingest.cmd_info import info
    res = CliRunner().invoke(info, [str(out)], terminal_width=300)
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and "3 of 51" in said and "empty classes (48, no sample at all)" in said
    assert "A001 " in said and "A012 " not in said.split("empty classes")[1].split("xsub")[0]
    assert "xsub_test lacks 3 class(es)" in said


def test_synthetic_generator_end_to_end(tmp_path):
    synth = pytest.importorskip("slim.ingest.synth")
    synth.generate(tmp_path / "raw", synth.SynthConfig(classes=4, performers=3, per_class=1),
                   progress=False)
    out = ingest("synthetic", [tmp_path / "raw"], tmp_path / "data", workers=2)
    card = json.loads((out / "card.json").read_text())
    assert card["num_samples"] == 36 and not card["skipped"] and card["num_classes"] == 4
    assert card["benchmarks"]["xview"] == {"train": 24, "test": 12}
    assert card["shards"]["xsub_train"] == 8
    assert verify(out) == []
