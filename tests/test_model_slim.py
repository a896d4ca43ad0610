import math

import pytest
import torch

from slim.model.encoder import EncoderConfig
from slim.model.head import HeadConfig
from slim.model.slim import SLiM, SLiMConfig


def _batch(b=4, t=16, tl=8, n_local=2, seed=0, base=None):
    """A pretraining batch in the pipeline's format (short views to stay fast)."""
    g = torch.Generator().manual_seed(seed)
    if base is None:
        base = torch.randn(b, 1, t, 25, 3, generator=g)
    glob = base.expand(-1, 2, -1, -1, -1) + 0.05 * torch.randn(b, 2, t, 25, 3, generator=g)
    n = t // 8 * 25
    gmask = torch.zeros(b, 2, n, dtype=torch.bool)
    gmask[..., : n // 2] = torch.rand(b, 2, n // 2, generator=g) < 0.8
    loc = glob[:, [0, 1] * (n_local // 2), :tl] + 0.05 * torch.randn(b, n_local, tl, 25, 3, generator=g)
    return {"global": glob, "global_mask": gmask,
            "locals": [{"x": loc, "mask": torch.zeros(b, n_local, tl // 8 * 25, dtype=torch.bool),
                        "anchor": torch.tensor([0, 1] * (n_local // 2))}],
            "index": torch.arange(b), "ids": [f"s{i}" for i in range(b)]}


def _model(**kw):
    return SLiM(SLiMConfig.tiny(**kw), generator=torch.Generator().manual_seed(0))


def test_forward_loss_terms_and_teacher_gets_no_gradient():
    m = _model()
    out = m.forward_loss(_batch(), teacher_temp=0.04)
    assert {"loss", "mfm", "glcl", "koleo"} <= set(out)
    assert out["glcl_terms"].item() == 2 + 2  # other global + one local per anchor, per direction
    want = out["mfm"] + out["glcl"] + 0.1 * out["koleo"]
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-6)
    out["loss"].backward()
    assert all(p.grad is None for p in m.teacher.parameters())
    assert all(p.grad is None for p in m.teacher_heads.parameters())
    assert m.student.patch_embed.weight.grad is not None
    assert m.student.mask_token.grad.abs().sum() > 0  # masked global tokens reach the loss


def test_teacher_sees_unmasked_globals_student_masked():
    m = _model(glcl_weight=0.0, koleo_weight=0.0)
    batch = _batch()
    seen = {}
    m.teacher.register_forward_pre_hook(lambda mod, args: seen.update(t=args) and None)
    m.student.register_forward_pre_hook(lambda mod, args: seen.update(s=args) and None)
    m.forward_loss(batch, 0.04)
    assert len(seen["t"]) == 1 or seen["t"][1] is None
    assert torch.equal(seen["s"][1], batch["global_mask"].transpose(0, 1).flatten(0, 1))


def test_ablation_weights_skip_branches():
    calls = []
    m = _model(glcl_weight=0.0)
    assert set(m.heads) == {"mfm"}
    m.student.register_forward_pre_hook(lambda mod, args: calls.append(args[0].shape[1]))
    out = m.forward_loss(_batch(), 0.04)
    assert calls == [16]  # local views only feed GLCL: not encoded
    assert out["glcl"].item() == 0.0 and out["mfm"].item() > 0
    m2 = _model(mfm_weight=0.0, koleo_weight=0.0)
    out2 = m2.forward_loss(_batch(), 0.04)
    assert set(m2.heads) == {"glcl"} and out2["loss"].item() == pytest.approx(out2["glcl"].item())


def test_student_runs_once_per_view_length():
    m = _model()
    rows = []
    m.student.register_forward_pre_hook(lambda mod, args: rows.append(tuple(args[0].shape[:2])))
    m.forward_loss(_batch(b=3, n_local=4), 0.04)
    assert rows == [(6, 16), (12, 8)]  # 2B globals, n_s * B locals


def test_update_teacher_is_the_ema():
    m = _model()
    with torch.no_grad():
        for p in m.student.parameters():
            p.add_(1.0)
    s = m.student.patch_embed.weight.detach().clone()
    t = m.teacher.patch_embed.weight.detach().clone()
    m.update_teacher(0.9)
    assert torch.allclose(m.teacher.patch_embed.weight, 0.9 * t + 0.1 * s)
    h_before = m.teacher_heads["glcl"].last_layer.weight.clone()
    m.update_teacher(1.0)
    assert torch.equal(m.teacher_heads["glcl"].last_layer.weight, h_before)


def test_param_groups_spec():
    spec = {d["name"]: d for d in _model().param_groups_spec()}
    assert not any(n.startswith("teacher") for n in spec)
    assert spec["student.patch_embed.weight"]["lr_mult"] == 0.2 and spec["student.patch_embed.weight"]["weight_decay"]
    for n in ("student.cls_token", "student.register_tokens", "student.mask_token", "student.joint_embed",
              "student.blocks.0.norm1.weight", "student.blocks.0.attn.qkv.bias", "heads.glcl.mlp.0.bias"):
        assert not spec[n]["weight_decay"], n
    assert spec["student.blocks.0.attn.qkv.weight"]["weight_decay"]
    assert [n for n, d in spec.items() if d["last_layer"]] == ["heads.glcl.last_layer.weight",
                                                               "heads.mfm.last_layer.weight"]



def test_tiny_training_lowers_loss_without_collapse(one_thread):
    torch.manual_seed(0)
    cfg = SLiMConfig(encoder=EncoderConfig.tiny(dim=32, heads=2, registers=1),
                     head=HeadConfig(hidden=64, bottleneck=16, prototypes=64))
    m = SLiM(cfg, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW([d["param"] for d in m.param_groups_spec()], lr=2e-3, weight_decay=0.01)
    # 8 distinct "actions": smooth joint trajectories with different frequencies
    t = torch.arange(16.0)[:, None, None]
    freq = torch.arange(1, 9.0)[:, None, None, None, None]
    base = torch.sin(freq * 0.2 * t + torch.randn(8, 1, 1, 25, 3, generator=torch.Generator().manual_seed(1)))
    losses = []
    for step in range(200):
        out = m.forward_loss(_batch(b=8, seed=step, base=base), teacher_temp=0.04)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        m.update_teacher(0.99)
        losses.append(out["glcl"].item() + out["mfm"].item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first - 2.0, (first, last)
    with torch.no_grad():
        cls = m.teacher(base[:, 0])["cls"]  # [8, D]
        probs = (m.teacher_heads["glcl"](cls) / 0.04).softmax(-1).mean(0)
    assert cls.std(0).mean() > 0.5  # teacher cls tokens differ across samples
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum()
    assert entropy > 0.8 * math.log(64)  # a collapsed teacher puts its mass on a few prototypes
