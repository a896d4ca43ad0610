"""Feature assembly under DDP: gathered by sample index with 2 gloo processes, every
index filled once; duplicates, strays and gaps are errors."""
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from slim.eval.gather import all_gather_rows, place_by_index

EXPECTED = np.array([3, 5, 8, 13, 21, 34, 55, 89, 144], dtype=np.int64)  # 9: uneven over 2 ranks


def _worker(rank, world, init_file, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        mine = EXPECTED[rank::world][::-1].copy()               # strided part, any order
        feats = torch.from_numpy(mine).float()[:, None].repeat(1, 4) * torch.tensor([1., -1, 2, 0])
        f, i = all_gather_rows(feats, torch.from_numpy(mine))
        placed = place_by_index(f, i, EXPECTED)
        if rank == 0:
            torch.save(placed, out_file)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_gather_by_index(tmp_path):
    out = tmp_path / "placed.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    placed = torch.load(out)
    want = torch.from_numpy(EXPECTED).float()[:, None] * torch.tensor([1., -1, 2, 0])
    assert torch.equal(placed, want)


def test_place_by_index_rejects_duplicates_strays_and_gaps():
    f = torch.arange(3.0)[:, None]
    exp = np.array([10, 20, 30])
    assert place_by_index(f, torch.tensor([30, 10, 20]), exp)[:, 0].tolist() == [1.0, 2.0, 0.0]
    with pytest.raises(ValueError, match="twice"):
        place_by_index(f, torch.tensor([10, 10, 20]), exp)
    with pytest.raises(ValueError, match="not in this split"):
        place_by_index(f, torch.tensor([10, 20, 31]), exp)
    with pytest.raises(ValueError, match="never"):
        place_by_index(f[:2], torch.tensor([10, 20]), exp)


def _writer_worker(rank, world, init_file, run_dir, data_dir, out_dir):
    """Both ranks run `features` and `retrieval` (cache off and on); every file replace
    into place is logged with the rank that made it."""
    import json
    import os
    from pathlib import Path

    from slim.eval.api import retrieval
    from slim.eval.common import FeatureOptions
    from slim.eval.export import FeaturesConfig, write_features
    from slim.eval.target import resolve_target

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    real_replace = os.replace

    def logged(src, dst, *a, **k):
        with open(Path(out_dir) / f"writes-{rank}.txt", "a") as fh:
            fh.write(json.dumps(str(dst)) + "\n")
        return real_replace(src, dst, *a, **k)

    os.replace = logged
    try:
        t = resolve_target(run_dir, None, data_dir, "xsub")
        opts = FeatureOptions(device="cpu", batch_size=8, progress=False)
        write_features(t, FeaturesConfig(out=str(Path(out_dir) / "f.parquet"), features=opts))
        retrieval(run_dir, device="cpu", batch_size=8, progress=False)
    finally:
        os.replace = real_replace
        dist.destroy_process_group()


def test_distributed_evaluation_writes_once(tmp_path):
    import json

    from slim.ingest.run import ingest
    from slim.ingest.synth import SynthConfig, generate
    from slim.model.encoder import Encoder, EncoderConfig
    from slim.model.io import save_encoder

    generate(tmp_path / "raw", SynthConfig(classes=2, performers=3, per_class=1, seed=0), progress=False)
    data = ingest("synthetic", tmp_path / "raw", tmp_path / "data", workers=0)
    run = tmp_path / "run"
    save_encoder(run / "encoder.pt", Encoder(EncoderConfig.tiny(dim=16, depth=1, heads=2),
                                             generator=torch.Generator().manual_seed(0)))
    (run / "run.json").write_text(json.dumps({"data": str(data), "benchmark": "xsub"}))
    out = tmp_path / "out"
    out.mkdir()
    mp.spawn(_writer_worker, args=(2, str(tmp_path / "init"), str(run), str(data), str(out)),
             nprocs=2, join=True)
    assert not (out / "writes-1.txt").exists()                     # rank 1 wrote nothing
    written = [json.loads(ln) for ln in (out / "writes-0.txt").read_text().splitlines()]
    assert any(w.endswith("f.parquet") for w in written)
    assert any("/retrieval_" in w and w.endswith(".json") for w in written)   # eval/retrieval_<dataset>_...json
    assert any(w.endswith(".npz") for w in written)                # the feature cache
