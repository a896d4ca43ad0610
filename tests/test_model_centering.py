"""Teacher targets for small batches (issue 13): Sinkhorn-Knopp equipartition cannot give
sharp targets when the batch has fewer rows than prototypes; DINO centering can."""
import math

import torch

from slim.model.centering import centered_probs, update_center
from slim.model.sinkhorn import sinkhorn_knopp
from slim.model.slim import SLiM, SLiMConfig


def _entropy(p):
    return -(p * p.clamp_min(1e-12).log()).sum(-1).mean().item()


def test_sinkhorn_spreads_small_batch_targets_centering_does_not():
    # 8 rows, 64 prototypes, each row confident about its own prototype (cosine-like logits)
    n, k = 8, 64
    logits = torch.full((n, k), -0.2)
    logits[torch.arange(n), torch.arange(n)] = 1.0
    sk = sinkhorn_knopp(logits, 0.04, iterations=3)
    dino = centered_probs(logits, torch.zeros(1, k), 0.04)
    # equipartition: 64 prototypes must each get 8/64 of a row: targets spread over many
    assert _entropy(sk) > 0.5 * math.log(k)
    assert _entropy(dino) < 0.01                       # centering keeps them one-hot
    assert torch.equal(dino.argmax(-1), torch.arange(n))
    assert torch.allclose(dino.sum(-1), torch.ones(n))


def test_update_center_is_an_ema_of_valid_rows():
    c = torch.zeros(1, 3)
    logits = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [100.0, 100.0, 100.0]])
    update_center(c, logits, 0.9, valid=torch.tensor([True, True, False]))
    assert torch.allclose(c, torch.tensor([[0.2, 0.2, 0.2]]))
    update_center(c, logits[:0], 0.9)                  # no row: unchanged
    assert torch.allclose(c, torch.tensor([[0.2, 0.2, 0.2]]))
    # a prototype every row prefers is pulled down: the centre stops one from dominating
    c = torch.zeros(1, 2)
    for _ in range(50):
        update_center(c, torch.tensor([[2.0, 0.0]] * 4), 0.9)
    p = centered_probs(torch.tensor([[2.0, 0.0]]), c, 1.0)
    assert abs(p[0, 0].item() - 0.5) < 0.01


def test_slim_dino_centering_buffers_and_step():
    cfg = SLiMConfig.tiny(centering="dino")
    model = SLiM(cfg, torch.Generator().manual_seed(0))
    assert {"center_glcl", "center_mfm"} <= set(dict(model.named_buffers()))
    # sinkhorn models keep their state dict keys (older checkpoints load strictly)
    assert not any(n.startswith("center_") for n, _ in SLiM(SLiMConfig.tiny()).named_buffers())
    try:
        SLiMConfig(centering="nope")
    except ValueError as e:
        assert "centering" in str(e)
    else:
        raise AssertionError("an unknown centering must be refused")


def test_head_batchnorm_keeps_a_shared_component_from_deciding_the_output():
    """Issue 13: class tokens of a small real set share a large common component; a plain
    head maps them all to nearly one output direction (uniform targets after centring),
    a head with BatchNorm (DINO's use_bn) removes what the batch shares."""
    import torch.nn.functional as F

    from slim.model.head import DINOHead, HeadConfig
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 32, generator=g) * 3 + 0.05 * torch.randn(64, 32, generator=g)

    def spread(head):
        z = F.normalize(head.mlp(x), dim=-1)
        return ((z @ z.T).sum() - len(z)).item() / (len(z) * (len(z) - 1))   # mean pairwise cosine

    plain = DINOHead(32, HeadConfig.tiny(), torch.Generator().manual_seed(1))
    bn = DINOHead(32, HeadConfig.tiny(batchnorm=True), torch.Generator().manual_seed(1))
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in bn.mlp)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.mlp)
    assert spread(plain) > 0.95 and spread(bn) < 0.5
