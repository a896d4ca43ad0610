import pytest
import torch

from slim.model.encoder import Encoder, EncoderConfig
from slim.model.rope import apply_rope, rope_angles


def _enc(**kw):
    return Encoder(EncoderConfig.tiny(**kw), generator=torch.Generator().manual_seed(0)).eval()


def _x(b, t, seed=1):
    return torch.randn(b, t, 25, 3, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("t", [64, 32, 16, 8])
def test_output_shapes_every_view_length(t):
    out = _enc()(_x(3, t))
    assert out["cls"].shape == (3, 64)
    assert out["registers"].shape == (3, 4, 64)
    assert out["patches"].shape == (3, t // 8, 25, 64)


def test_rejects_length_not_multiple_of_patch():
    with pytest.raises(ValueError, match="multiple of 8"):
        _enc()(_x(1, 12))


def test_rope_logits_depend_only_on_relative_offset():
    hd = 32
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(hd, generator=g), torch.randn(hd, generator=g)
    cos, sin = rope_angles(torch.arange(10), hd)
    qr = apply_rope(q.expand(10, hd), cos, sin)
    kr = apply_rope(k.expand(10, hd), cos, sin)
    logits = qr @ kr.t()  # [t_q, t_k]
    for off in range(-9, 10):
        diag = torch.diagonal(logits, off)
        assert torch.allclose(diag, diag[0].expand_as(diag), atol=1e-5)
    # offset 0 is the unrotated dot product; other offsets differ from it
    assert torch.allclose(logits[3, 3], q @ k, atol=1e-5)
    assert not torch.allclose(logits[3, 5], q @ k, atol=1e-3)


def test_rope_position_zero_is_identity_and_preserves_norm():
    x = torch.randn(4, 32)
    cos, sin = rope_angles(torch.tensor([0, 0, 5, 7]), 32)
    y = apply_rope(x, cos, sin)
    assert torch.allclose(y[:2], x[:2])
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5)


def test_rope_shift_of_all_positions_leaves_attention_logits_unchanged():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(2, 6, 32, generator=g), torch.randn(2, 6, 32, generator=g)
    pos = torch.tensor([0, 0, 1, 1, 2, 5])

    def logits(p):
        cos, sin = rope_angles(p, 32)
        return apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).transpose(-1, -2)

    assert torch.allclose(logits(pos), logits(pos + 7), atol=1e-4)
    assert not torch.allclose(logits(pos), logits(pos * 2), atol=1e-3)


def test_masked_content_is_invisible_and_unmasked_content_matters():
    enc = _enc()
    x = _x(2, 16)
    mask = torch.zeros(2, 50, dtype=torch.bool)
    mask[0, 27] = True  # t = 1, joint 2 of sample 0
    x2 = x.clone()
    x2[0, 8:16, 2] += 5.0  # change only the content of the masked patch
    a, b = enc(x, mask), enc(x2, mask)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6)
    c = enc(x2, torch.zeros_like(mask))  # unmasked, the change is seen ...
    assert not torch.allclose(a["cls"][0], c["cls"][0], atol=1e-4)
    assert torch.allclose(a["cls"][1], c["cls"][1], atol=1e-6)  # ... but only by its own sample


def test_mask_token_replaces_patch_embedding_before_joint_embedding():
    enc = _enc()
    with torch.no_grad():
        enc.mask_token.copy_(torch.arange(64.0))
    x = _x(1, 16)
    mask = torch.zeros(1, 50, dtype=torch.bool)
    mask[0, 30] = True  # t = 1, joint 5
    tok, ref = enc.embed(x, mask), enc.embed(x)
    assert torch.allclose(tok[0, 30], enc.mask_token + enc.joint_embed[5])
    keep = torch.ones(50, dtype=torch.bool)
    keep[30] = False
    assert torch.equal(tok[0, keep], ref[0, keep])
    assert torch.equal(enc.embed(x, torch.zeros_like(mask)), ref)


def test_eval_is_deterministic_and_drop_path_only_acts_in_training():
    enc = _enc(drop_path_rate=0.5)
    x = _x(8, 16)
    a, b = enc(x), enc(x)
    assert torch.equal(a["cls"], b["cls"])
    enc.train()
    torch.manual_seed(0)
    c = enc(x)
    assert not torch.allclose(a["cls"], c["cls"])


def test_fused_and_plain_attention_agree():
    enc = _enc()
    x = _x(2, 32)
    a = enc(x)["patches"]
    enc.set_fused_attention(False)
    assert torch.allclose(a, enc(x)["patches"], atol=1e-5)


def test_layer_ids_for_layer_decay():
    enc = _enc()
    ids = {n: enc.layer_id(n) for n, _ in enc.named_parameters()}
    assert ids["patch_embed.weight"] == 0 and ids["cls_token"] == 0 and ids["mask_token"] == 0
    assert ids["blocks.0.attn.qkv.weight"] == 1 and ids["blocks.1.mlp.w3.bias"] == 2
    assert ids["norm.weight"] == 3 == enc.num_layer_ids - 1
    assert len(enc.blocks) == 2 and isinstance(enc.blocks, torch.nn.ModuleList)


def test_absolute_position_variant_and_ffn_choice():
    enc = _enc(pos="absolute", registers=0, ffn="mlp", patch_t=4, max_frames=16)
    out = enc(_x(2, 16))
    assert out["registers"].shape == (2, 0, 64) and out["patches"].shape == (2, 4, 25, 64)
    with pytest.raises(ValueError, match="max_frames"):
        enc(_x(1, 32))


def test_default_config_is_the_papers():
    c = EncoderConfig()
    assert (c.depth, c.dim, c.heads, c.head_dim, c.registers, c.patch_t, c.patch_j) == (8, 256, 8, 32, 4, 8, 1)
    assert c.ffn_hidden == 688 and EncoderConfig(ffn="mlp").ffn_hidden == 1024


def test_root_relative_input_separates_pose_from_trajectory():
    """Issue 13: with root_relative, a translated body gives the same tokens for every
    joint but the root; the change of coordinates is invertible (nothing is lost)."""
    from slim.model.encoder import Encoder, EncoderConfig
    enc = Encoder(EncoderConfig.tiny(num_joints=5, root_relative=True, root_joint=0))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 5, 3, generator=g)
    shift = torch.randn(2, 8, 1, 3, generator=g)           # a per-frame trajectory
    a, b = enc.coordinates(x), enc.coordinates(x + shift)
    torch.testing.assert_close(a[:, :, 1:], b[:, :, 1:])   # pose tokens: trajectory-free
    torch.testing.assert_close(b[:, :, :1] - a[:, :, :1], shift)  # root keeps it
    back = a + a[:, :, :1] * torch.tensor([0.0, 1, 1, 1, 1])[:, None]
    torch.testing.assert_close(back, x)                     # invertible
    assert torch.equal(enc.coordinates(torch.zeros(1, 8, 5, 3)), torch.zeros(1, 8, 5, 3))
    plain = Encoder(EncoderConfig.tiny(num_joints=5))
    assert torch.equal(plain.coordinates(x), x)             # the default is unchanged
    with pytest.raises(ValueError, match="root_joint"):
        Encoder(EncoderConfig.tiny(num_joints=5, root_joint=5))
