"""The loop on an in-memory batch source: DDP on 2 CPU processes (gloo) against one
process with the same global batch, the first-epoch freeze of the heads' last layers,
NaN detection, and the bare command's dataset discovery."""
from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.multiprocessing as mp
from rich.console import Console
from test_train_helpers import ddp_worker, fake_source

from slim.train import config as C
from slim.train.configtools import parse_set
from slim.train.trainer import TrainingError, pretrain

# KoLeo's nearest neighbours are searched within each rank's batch (as DINOv2), so it is
# the one term that legitimately differs between 2 x B and 1 x 2B: switched off here.
DDP_SETS = ["model.koleo_weight=0", "schedule.epochs=2", "schedule.epoch_steps=2", "run.threads=1",
            "checkpoint.every_steps=100"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metrics(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_ddp_two_ranks_match_one_process(tmp_path):
    cfg = C.resolve("cpu-smoke", cli_overrides=parse_set(DDP_SETS))
    single = tmp_path / "single"
    captured = {}
    pretrain(cfg, data_dir=tmp_path, benchmark="xsub", run_dir=single, batch_source=fake_source(),
             console=Console(quiet=True), model_hook=lambda m: captured.setdefault("m", m))
    ddp = tmp_path / "ddp"
    mp.spawn(ddp_worker, args=(2, _free_port(), C.to_toml(cfg), str(ddp), str(tmp_path)), nprocs=2, join=True)

    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for k in r0:  # DDP keeps the replicas identical: bitwise
        assert torch.equal(r0[k], r1[k]), k
    one = captured["m"].state_dict()
    worst = max(float((r0[k].float() - one[k].float()).abs().max()) for k in r0)
    assert worst < 2e-4, f"DDP weights differ from the single process by {worst}"
    m_ddp, m_one = _metrics(ddp), _metrics(single)
    assert [m["step"] for m in m_ddp] == [m["step"] for m in m_one] == [1, 2, 3, 4]
    for a, b in zip(m_ddp, m_one):
        for key in ("loss", "mfm", "glcl"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (a["step"], key)
    assert json.loads((ddp / "run.json").read_text())["world_size"] == 2


def test_last_layer_frozen_in_first_epoch_only(tmp_path):
    cfg = C.resolve("cpu-smoke")  # epoch = 3 steps, last layer frozen for 1 epoch
    captured = {}

    def hook(m):
        captured["init"] = {k: v.clone() for k, v in m.state_dict().items()}
        captured["m"] = m
    pretrain(cfg, data_dir=tmp_path, benchmark="xsub", run_dir=tmp_path / "a", batch_source=fake_source(),
             console=Console(quiet=True), stop_after=3, model_hook=hook)
    now = captured["m"].state_dict()
    init = captured["init"]
    for name in ("heads.glcl.last_layer.weight", "heads.mfm.last_layer.weight"):
        assert torch.equal(now[name], init[name]), name
    assert not torch.equal(now["heads.glcl.mlp.0.weight"], init["heads.glcl.mlp.0.weight"])
    assert not torch.equal(now["student.patch_embed.weight"], init["student.patch_embed.weight"])
    captured.clear()
    pretrain(cfg, data_dir=tmp_path, benchmark="xsub", run_dir=tmp_path / "a", batch_source=fake_source(),
             console=Console(quiet=True), stop_after=5, model_hook=lambda m: captured.setdefault("m", m))
    after = captured["m"].state_dict()
    assert not torch.equal(after["heads.glcl.last_layer.weight"], init["heads.glcl.last_layer.weight"])


def test_non_finite_loss_stops_with_step_and_ids(tmp_path):
    cfg = C.resolve("cpu-smoke")
    with pytest.raises(TrainingError, match=r"step 2 .*S002_0") as err:
        pretrain(cfg, data_dir=tmp_path, benchmark="xsub", run_dir=tmp_path / "nan",
                 batch_source=fake_source(nan_at=2), console=Console(quiet=True))
    assert "slim-ingest show" in err.value.hint
    assert "lower" not in err.value.hint                  # the inputs were the cause, not the lr
    info = json.loads((tmp_path / "nan" / "run.json").read_text())
    assert info["status"] == "failed" and "non-finite loss at step 2" in info["error"]


def test_bare_command_finds_the_dataset_or_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    import click

    from slim.train.cmd_pretrain import _default_out, _pick_dataset
    monkeypatch.chdir(tmp_path)
    with pytest.raises(click.exceptions.Exit):
        _pick_dataset(None)
    assert "make ingest DATASET=synthetic" in capsys.readouterr().err.replace("\n", "")
    for name in ("alpha", "beta"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "samples.h5").touch()
        (tmp_path / "data" / name / "manifest.parquet").touch()
    with pytest.raises(click.exceptions.Exit):
        _pick_dataset(None)
    assert "data/alpha" in capsys.readouterr().err
    import shutil
    shutil.rmtree(tmp_path / "data" / "beta")
    assert _pick_dataset(None).name == "alpha"
    cfg = C.resolve("cpu-smoke")
    assert _default_out(tmp_path / "data" / "alpha", "xsub", "cpu-smoke", cfg).name == "alpha-xsub-cpu-smoke"
