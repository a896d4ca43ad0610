import multiprocessing as mp
import os

import numpy as np
import pyarrow as pa
import pytest
import torch

from slim.ingest.h5store import H5Writer
from slim.ingest.manifest import write_manifest
from slim.ingest.shards import SplitShardWriter
from slim.pipeline.config import PipelineConfig
from slim.pipeline.loader import build_eval_loader, build_pretrain_loader
from slim.pipeline.sources import H5Dataset
from slim.pipeline.views import test_view as centre_view

N, N_TRAIN = 24, 16


def make_dataset(root, n_shards=4):
    """24 samples (16 xsub train, 8 test), 20-80 frames, 1-2 persons, plus shards."""
    rng = np.random.default_rng(0)
    data = root / "tiny"
    ids = [f"S001C001P{i:03d}R001A{i % 5 + 1:03d}" for i in range(N)]
    train = np.arange(N) < N_TRAIN
    samples = []
    with H5Writer(data / "samples.h5", dataset="synthetic", ingest_version="t",
                  normalization="centre", layout="kinect-v2-25") as w:
        for i in range(N):
            x = rng.normal(size=(int(rng.integers(20, 80)), 1 + i % 2, 25, 3)).astype(np.float32)
            samples.append(x)
            w.append(ids[i], i % 5, x)
    table = pa.table({
        "index": np.arange(N, dtype=np.int64), "id": ids, "dataset": ["synthetic"] * N,
        "label": np.array([i % 5 for i in range(N)], dtype=np.int16),
        "num_frames": [s.shape[0] for s in samples], "num_persons": [s.shape[1] for s in samples],
        "xsub_train": train, "xsub_test": ~train,
        "xsub_train_1pct": np.arange(N) < 5,
    })
    write_manifest(data, table, {"dataset": "synthetic", "ingest_version": "t",
                                 "normalization": "centre", "benchmarks": ["xsub"],
                                 "num_classes": 5, "class_names": list("abcde"),
                                 "layout": "kinect-v2-25"})
    sw = SplitShardWriter(data / "shards" / "xsub_train", "train", N_TRAIN, n_shards)
    for i in range(N_TRAIN):
        sw.write(samples[i], {"id": ids[i], "index": i, "label": i % 5, "dataset": "synthetic",
                              "num_frames": samples[i].shape[0], "num_persons": samples[i].shape[1]})
    sw.close()
    return data, samples


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("pipe"))


def _take(loader, n):
    out = []
    for b in loader:
        out.append(b)
        if len(out) == n:
            return out
    return out


def _same(a, b):
    assert a["ids"] == b["ids"]
    assert torch.equal(a["global"], b["global"]) and torch.equal(a["global_mask"], b["global_mask"])
    for x, y in zip(a["locals"], b["locals"]):
        assert torch.equal(x["x"], y["x"]) and torch.equal(x["mask"], y["mask"])


def test_h5dataset_split_and_subset(tiny):
    data, samples = tiny
    ds = H5Dataset(data, split="xsub_test")
    assert len(ds) == N - N_TRAIN
    it = ds[2]
    assert it["index"] == N_TRAIN + 2 and it["label"] == (N_TRAIN + 2) % 5
    np.testing.assert_array_equal(it["joints"], samples[N_TRAIN + 2])
    assert len(H5Dataset(data, split="xsub_train", subset="xsub_train_1pct")) == 5
    with pytest.raises(KeyError, match="xview_train"):
        H5Dataset(data, split="xview_train")


def test_pretrain_batches_format_determinism_and_resume(tiny):
    data, _ = tiny
    cfg = PipelineConfig()
    mk = lambda **kw: build_pretrain_loader(data, "xsub", cfg, 4, seed=7, end_step=6, **kw)
    first = _take(mk(), 6)
    b = first[0]
    assert b["global"].shape == (4, 2, 64, 25, 3) and b["global"].dtype == torch.float32
    assert b["global_mask"].shape == (4, 2, 200) and b["global_mask"].dtype == torch.bool
    assert [s["x"].shape[2] for s in b["locals"]] == [32, 16, 8]
    assert b["locals"][0]["anchor"].tolist() == [0, 0, 1, 1]
    assert b["index"].dtype == torch.int64 and len(b["ids"]) == 4
    # One epoch (4 steps of 4) covers every training sample once.
    seen = torch.cat([x["index"] for x in first[:4]]).tolist()
    assert sorted(seen) == list(range(N_TRAIN))
    for x, y in zip(first, _take(mk(), 6)):
        _same(x, y)
    for x, y in zip(first[3:], _take(mk(start_step=3), 3)):  # exact resume
        _same(x, y)
    for x, y in zip(first, _take(mk(num_workers=2), 6)):  # workers do not change batches
        _same(x, y)
    other = _take(build_pretrain_loader(data, "xsub", cfg, 4, seed=8, end_step=1), 1)[0]
    assert not torch.equal(other["global"], first[0]["global"])


def test_ranks_split_each_epoch(tiny):
    data, _ = tiny
    idx = []
    for rank in (0, 1):
        ld = build_pretrain_loader(data, "xsub", PipelineConfig(), 4, seed=1, rank=rank,
                                   world_size=2, end_step=2)
        assert ld.steps_per_epoch == 2 and len(ld) == 2
        idx += torch.cat([b["index"] for b in ld]).tolist()
    assert sorted(idx) == list(range(N_TRAIN))


def test_eval_loader_manifest_order_and_test_transform(tiny):
    data, samples = tiny
    batches = list(build_eval_loader(data, "xsub_test", 3))
    index = torch.cat([b["index"] for b in batches]).tolist()
    assert index == list(range(N_TRAIN, N))
    b = batches[0]
    assert b["x"].shape == (3, 2, 64, 25, 3)
    assert b["person_mask"].tolist() == [[True, False], [True, True], [True, False]]
    np.testing.assert_array_equal(b["x"][1].numpy(), centre_view(samples[N_TRAIN + 1]))
    assert not b["x"][0, 1].any()
    parts = [torch.cat([b["index"] for b in build_eval_loader(data, "xsub_test", 3, rank=r,
                                                              world_size=3)]) for r in range(3)]
    assert sorted(torch.cat(parts).tolist()) == index


def test_shard_stream_is_deterministic_resumable_and_checks_shard_count(tiny):
    data, _ = tiny
    cfg = PipelineConfig()
    mk = lambda **kw: build_pretrain_loader(data, "xsub", cfg, 4, seed=3, source="shards",
                                            epoch_samples=16, end_step=6, **kw)
    a = _take(mk(), 6)
    assert set(torch.cat([b["index"] for b in a]).tolist()) <= set(range(N_TRAIN))
    for x, y in zip(a, _take(mk(), 6)):
        _same(x, y)
    for x, y in zip(a[2:], _take(mk(start_step=2), 4)):
        _same(x, y)
    with pytest.raises(ValueError, match="4 shards for 6 readers"):
        build_pretrain_loader(data, "xsub", cfg, 2, seed=0, source="shards", world_size=3,
                              num_workers=2)


def _ddp_worker(rank, data, init, q):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        try:
            build_pretrain_loader(data, "xsub", PipelineConfig(), 2, seed=0, source="shards",
                                  rank=rank, world_size=2, num_workers=3)
            few = "no error"
        except ValueError as e:
            few = str(e)
        ld = build_pretrain_loader(data, "xsub", PipelineConfig(), 2, seed=0, source="shards",
                                   rank=rank, world_size=2, num_workers=2, end_step=3)
        steps = torch.zeros(1)
        for b in ld:
            dist.all_reduce(torch.ones(1))  # would hang if one rank had fewer batches
            steps += 1
        dist.all_reduce(steps)
        q.put((rank, few, int(steps.item())))
    finally:
        dist.destroy_process_group()


def test_two_ranks_with_two_workers_never_hang(tiny, tmp_path):
    data, _ = tiny
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    init = f"file://{tmp_path / 'rdzv'}"
    procs = [ctx.Process(target=_ddp_worker, args=(r, data, init, q)) for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive, "a rank hung"
    assert all(p.exitcode == 0 for p in procs)
    res = sorted(q.get(timeout=5) for _ in procs)
    for rank, few, steps in res:
        assert "4 shards for 6 readers" in few  # 2 ranks x 3 workers > 4 shards
        assert steps == 6  # 3 steps on each of the two ranks


def test_show_draws_views_and_names_a_missing_id(tiny, tmp_path):
    pytest.importorskip("matplotlib")
    from click.testing import CliRunner

    from slim.ingest.cmd_show import show

    data, _ = tiny
    out = tmp_path / "v.png"
    r = CliRunner().invoke(show, [str(data), "S001C001P003R001A004", "--views", "--frames", "3",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    r = CliRunner().invoke(show, [str(data), "NOPE", "--out", str(out)])
    assert r.exit_code != 0 and "NOPE" in r.output


def test_show_two_person_views_class_name_and_png_suffix(tiny, tmp_path):
    pytest.importorskip("matplotlib")
    from click.testing import CliRunner

    from slim.ingest.cmd_show import class_name, show
    from slim.ingest.h5store import H5Samples
    from slim.ingest.manifest import read_manifest

    data, _ = tiny
    store = H5Samples(data)
    two = [sid for sid, m in zip(store.ids, store.num_persons) if m == 2]
    assert two, "the tiny dataset has no two-person sample"
    i = store.ids.index(two[0])
    _, meta = read_manifest(data)
    assert meta["class_names"][int(store.labels[i])] in class_name(data, int(store.labels[i]))
    r = CliRunner().invoke(show, [str(data), two[0], "--views", "--frames", "2", "--person", "2",
                                  "--out", str(tmp_path / "x")], terminal_width=300)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "x").exists()
    assert "x.png" in r.output and ".png added" in r.output
    r = CliRunner().invoke(show, [str(data), two[0], "--views", "--person", "3", "--out", str(tmp_path / "y.png")],
                           terminal_width=300)
    assert r.exit_code == 2 and "no person 3" in r.output


def test_features_csv_is_csv_and_unknown_suffix_is_refused(tmp_path):
    from slim.eval.export import output_format
    assert output_format("f.csv") == "csv" and output_format("f.parquet") == "parquet"
    with pytest.raises(ValueError, match="neither Parquet nor CSV"):
        output_format("f.txt")
