import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from slim.model.glcl import glcl_loss
from slim.model.head import DINOHead, HeadConfig
from slim.model.koleo import koleo_loss
from slim.model.masked import token_weights
from slim.model.mfm import mfm_loss
from slim.model.sinkhorn import sinkhorn_knopp


def test_sinkhorn_hand_cases():
    # columns already balanced: the result is the row-wise softmax
    q = sinkhorn_knopp(torch.log(torch.tensor([[1.0, 3.0], [3.0, 1.0]])), temp=1.0)
    assert torch.allclose(q, torch.tensor([[0.25, 0.75], [0.75, 0.25]]), atol=1e-6)
    # both samples prefer prototype 0: equipartition splits them evenly (exact after 1 iteration)
    q = sinkhorn_knopp(torch.log(torch.tensor([[3.0, 1.0], [3.0, 1.0]])), temp=1.0, iterations=1)
    assert torch.allclose(q, torch.full((2, 2), 0.5), atol=1e-6)


def test_sinkhorn_rows_and_columns():
    logits = torch.randn(12, 5, generator=torch.Generator().manual_seed(0))
    hot = sinkhorn_knopp(logits.tanh() + 10, temp=0.04)  # cosine logits (+10): exp(275) overflows without the max shift
    assert torch.isfinite(hot).all() and torch.allclose(hot.sum(1), torch.ones(12), atol=1e-5)
    q = sinkhorn_knopp(logits, temp=0.5)
    assert torch.allclose(q.sum(1), torch.ones(12), atol=1e-5)  # each sample: a distribution
    err = [(sinkhorn_knopp(logits, 0.5, it).sum(0) - 12 / 5).abs().max() for it in (0, 3, 50)]
    assert err[0] > 0.3 and err[1] < err[0] / 3 and err[2] < 1e-4  # prototypes: N / K each


def _sk_worker(rank, logits, q_full, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        mine = logits[rank * 4:(rank + 1) * 4]
        torch.testing.assert_close(sinkhorn_knopp(mine, 0.1), q_full[rank * 4:(rank + 1) * 4])
    finally:
        dist.destroy_process_group()


def test_sinkhorn_all_reduces_across_ranks():
    logits = torch.randn(8, 6, generator=torch.Generator().manual_seed(1))
    q_full = sinkhorn_knopp(logits, 0.1)
    mp.spawn(_sk_worker, args=(logits, q_full, 29500 + os.getpid() % 1000), nprocs=2, join=True)


def test_glcl_hand_computed():
    teacher = torch.tensor([[[1.0, 0.0]], [[0.5, 0.5]]])  # [A=2, B=1, K=2]
    student = torch.tensor([[[0.0, 0.0]], [[math.log(3.0), 0.0]]])  # [S=2, B=1, K]
    got = glcl_loss(teacher, student, [(0, 1), (1, 0)], student_temp=1.0)
    want = (-math.log(0.75) + math.log(2.0)) / 2
    assert got.item() == pytest.approx(want, abs=1e-6)


def test_mfm_hand_computed_mean_per_view_then_over_views():
    teacher = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    student = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [math.log(3.0), 0.0]])
    views = torch.tensor([0, 0, 2])  # view 1 has no masked token: left out of the mean
    got = mfm_loss(teacher, student, token_weights(views, num_views=3), student_temp=1.0)
    want = ((math.log(2) + math.log(4 / 3)) / 2 + math.log(4)) / 2
    assert got.item() == pytest.approx(want, abs=1e-6)


def test_koleo_hand_computed_and_guards():
    x = torch.tensor([[2.0, 0.0], [0.0, 0.5], [-1.0, 0.0]])  # normalised: e1, e2, -e1
    assert koleo_loss(x).item() == pytest.approx(-math.log(math.sqrt(2)), abs=1e-6)
    dup = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss = koleo_loss(dup)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(dup.grad).all()
    one = torch.randn(1, 4, requires_grad=True)
    l1 = koleo_loss(one)
    l1.backward()
    assert l1.item() == 0.0 and torch.isfinite(one.grad).all()


def test_head_shapes_and_cosine_logits():
    head = DINOHead(16, HeadConfig(hidden=32, bottleneck=8, prototypes=20))
    out = head(torch.randn(5, 16) * 100)
    assert out.shape == (5, 20)
    assert out.abs().max() <= 1.0 + 1e-5  # unit prototypes . unit bottleneck
    names = [n for n, _ in head.named_parameters()]
    assert "last_layer.weight" in names and not any("last_layer.bias" in n for n in names)
    assert sum(isinstance(m, torch.nn.Linear) for m in head.mlp) == 3
    before = head(torch.ones(1, 16))
    with torch.no_grad():
        head.last_layer.weight.mul_(7.0)  # weight normalisation: row scale is irrelevant
    assert torch.allclose(head(torch.ones(1, 16)), before, atol=1e-6)
