"""samples.h5 writer/reader and manifest round trips."""
import pickle

import numpy as np
import pyarrow as pa
import pytest

from slim.ingest.h5store import H5Samples, H5Writer
from slim.ingest.manifest import read_manifest, write_manifest

META = dict(dataset="toy", ingest_version="1", normalization="center", layout="kinect-v2-25",
            benchmarks=["xsub"], num_classes=3, class_names=["a", "b", "c"])


def test_h5_round_trip_ragged(tmp_path):
    rng = np.random.default_rng(0)
    samples = [rng.normal(size=(t, m, 25, 3)).astype(np.float32) for t, m in [(5, 1), (3, 2), (7, 2)]]
    with H5Writer(tmp_path / "samples.h5", dataset="toy", ingest_version="1",
                  normalization="center", layout="kinect-v2-25", chunk_rows=4) as w:
        for k, s in enumerate(samples):
            w.append(f"id{k}", k, s)
    assert not (tmp_path / "samples.h5.tmp").exists()
    h = H5Samples(tmp_path)
    assert len(h) == 3 and h.ids == ["id0", "id1", "id2"]
    assert h.labels.tolist() == [0, 1, 2] and h.num_persons.tolist() == [1, 2, 2]
    assert h.offsets.tolist() == [0, 5, 11, 25]
    for k, s in enumerate(samples):
        np.testing.assert_array_equal(h.read(k), s)
    h2 = pickle.loads(pickle.dumps(h))
    np.testing.assert_array_equal(h2.read(-1), samples[-1])
    assert h2.attrs["dataset"] == "toy"


def test_h5_writer_error_removes_tmp(tmp_path):
    with pytest.raises(RuntimeError):
        with H5Writer(tmp_path / "s.h5", dataset="t", ingest_version="1", normalization="",
                      layout="ntu25") as w:
            w.append("a", 0, np.zeros((2, 1, 25, 3), np.float32))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_manifest_round_trip(tmp_path):
    t = pa.table({"index": pa.array([0, 1], pa.int64()), "xsub_train": [True, False]})
    write_manifest(tmp_path, t, META)
    table, meta = read_manifest(tmp_path)
    assert table.column("xsub_train").to_pylist() == [True, False]
    assert meta["num_classes"] == 3 and meta["slim.num_classes"] == 3
    assert meta["benchmarks"] == ["xsub"] and meta["class_names"][2] == "c"
    assert meta["dataset"] == "toy" and meta["ingest_version"] == "1"
    assert table.schema.metadata[b"slim.dataset"] == b"toy"


def test_h5_layout_fixes_the_joint_count_and_travels_with_the_file(tmp_path):
    x = np.random.default_rng(0).normal(size=(4, 1, 20, 3)).astype(np.float32)
    with H5Writer(tmp_path / "s.h5", dataset="t", ingest_version="1", normalization="",
                  layout="kinect_v1_20") as w:
        w.append("a", 0, x)
        with pytest.raises(ValueError, match=r"\[T, M, 20, 3\]"):
            w.append("b", 0, np.zeros((2, 1, 25, 3), np.float32))
    h = H5Samples(tmp_path / "s.h5")
    assert h.layout.name == "kinect_v1_20" and h.num_joints_stored() == 20
    np.testing.assert_array_equal(h.read(0), x)
    with pytest.raises(KeyError, match="unknown skeleton layout"):
        H5Writer(tmp_path / "u.h5", dataset="t", ingest_version="1", normalization="", layout="nope")
