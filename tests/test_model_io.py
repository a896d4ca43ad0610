import dataclasses

import pytest
import torch

from slim.model.encoder import Encoder, EncoderConfig
from slim.model.io import load_encoder, save_encoder


def _enc(**kw):
    return Encoder(EncoderConfig.tiny(**kw), generator=torch.Generator().manual_seed(0)).eval()


def test_roundtrip_config_weights_and_meta(tmp_path):
    enc = _enc(registers=2, ffn="mlp")
    path = save_encoder(tmp_path / "enc.pt", enc, extra={"step": 7, "run": "demo"})
    back, meta = load_encoder(path)
    assert back.cfg == enc.cfg
    assert meta["step"] == 7 and meta["run"] == "demo" and meta["format"] == "slim-encoder"
    assert meta["config"] == dataclasses.asdict(enc.cfg)
    x = torch.randn(2, 16, 25, 3)
    assert torch.equal(back(x)["cls"], enc(x)["cls"])
    assert not (tmp_path / "enc.pt.tmp").exists()
    # the file holds plain types only
    torch.load(path, weights_only=True)


def _rewrite(path, fn):
    payload = torch.load(path, weights_only=True)
    fn(payload)
    torch.save(payload, path)


def test_missing_and_unexpected_keys_are_named(tmp_path):
    path = save_encoder(tmp_path / "enc.pt", _enc())
    _rewrite(path, lambda p: (p["state_dict"].pop("mask_token"), p["state_dict"].update(extra_w=torch.zeros(1))))
    with pytest.raises(ValueError) as e:
        load_encoder(path)
    msg = str(e.value)
    assert "mask_token" in msg and "extra_w" in msg and str(path) in msg


def test_wrong_shapes_unknown_config_and_other_files_fail_loudly(tmp_path):
    path = save_encoder(tmp_path / "enc.pt", _enc())
    _rewrite(path, lambda p: p["state_dict"].update(cls_token=torch.zeros(1, 3)))
    with pytest.raises(ValueError, match="cls_token"):
        load_encoder(path)
    path = save_encoder(tmp_path / "enc2.pt", _enc())
    _rewrite(path, lambda p: p["config"].update(bogus=1))
    with pytest.raises(ValueError, match="bogus"):
        load_encoder(path)
    other = tmp_path / "ckpt.pt"
    torch.save({"model": {}}, other)
    with pytest.raises(ValueError, match="not a slim-encoder file"):
        load_encoder(other)
    with pytest.raises(FileNotFoundError):
        load_encoder(tmp_path / "none.pt")


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "slim-encoder", "obj": object.__new__(EncoderConfig)}, path)
    with pytest.raises(ValueError, match="weights_only"):
        load_encoder(path)
