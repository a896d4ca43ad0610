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
