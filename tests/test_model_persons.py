import pytest
import torch

from slim.model.encoder import Encoder, EncoderConfig, encode_sample


def _enc():
    return Encoder(EncoderConfig.tiny(), generator=torch.Generator().manual_seed(0)).eval()


class _RowCounter:
    def __init__(self, enc):
        self.rows = 0
        enc.register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.rows += args[0].shape[0]


def test_absent_padded_person_changes_nothing_and_costs_nothing():
    enc = _enc()
    counter = _RowCounter(enc)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 2, 16, 25, 3, generator=g)
    pm = torch.tensor([[True, False], [True, True], [True, False]])
    a = encode_sample(enc, x, pm)
    assert counter.rows == 4  # present persons only
    x2 = x.clone()
    x2[0, 1] = 100.0  # garbage in the absent slot
    x2[2, 1] = 0.0
    assert torch.equal(encode_sample(enc, x2, pm), a)
    # a one-person sample's feature is that person's own feature
    single = encode_sample(enc, x[:1, :1], torch.ones(1, 1, dtype=torch.bool))
    assert torch.allclose(a[0], single[0], atol=1e-6)


def test_features_are_mean_over_present_persons():
    enc = _enc()
    x = torch.randn(1, 2, 16, 25, 3)
    both = encode_sample(enc, x, torch.ones(1, 2, dtype=torch.bool), pool="cls")
    p0 = enc(x[:, 0])["cls"]
    p1 = enc(x[:, 1])["cls"]
    assert torch.allclose(both, (p0 + p1) / 2, atol=1e-6)


def test_pools():
    enc = _enc()
    x = torch.randn(2, 1, 16, 25, 3)
    pm = torch.ones(2, 1, dtype=torch.bool)
    out = enc(x[:, 0])
    assert torch.allclose(encode_sample(enc, x, pm, "cls"), out["cls"], atol=1e-6)
    assert torch.allclose(encode_sample(enc, x, pm, "mean"), out["patches"].mean((1, 2)), atol=1e-6)
    cm = encode_sample(enc, x, pm)
    assert cm.shape == (2, 128)
    with pytest.raises(ValueError, match="pool"):
        encode_sample(enc, x, pm, "max")


def test_sample_without_person_is_an_error():
    with pytest.raises(ValueError, match="no present person"):
        encode_sample(_enc(), torch.zeros(2, 2, 8, 25, 3), torch.tensor([[True, False], [False, False]]))
