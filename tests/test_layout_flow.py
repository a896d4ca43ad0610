"""The layout travels with the data: the real NW-UCLA excerpt in its native 20-joint
layout goes through the pretraining loader, pretraining (the encoder's joint count comes
from the manifest) and evaluation without anyone naming the layout."""
import json
from pathlib import Path

import pytest
from rich.console import Console

from slim.eval import api
from slim.ingest.run import ingest
from slim.model.io import load_encoder
from slim.pipeline.config import PipelineConfig
from slim.pipeline.loader import build_pretrain_loader
from slim.train import config as C
from slim.train.configtools import parse_set
from slim.train.trainer import pretrain

FIX = Path(__file__).parent / "fixtures" / "nwucla"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ingest("nwucla", FIX, tmp_path_factory.mktemp("flow") / "data")


def test_loader_reads_the_layout_from_the_manifest(data):
    loader = build_pretrain_loader(data, "xview", PipelineConfig(local_counts=(1, 1, 1)), 2, seed=0, end_step=1)
    b = next(iter(loader))
    assert b["global"].shape == (2, 2, 64, 20, 3) and b["global_mask"].shape == (2, 2, 8 * 20)
    assert [s["x"].shape[3] for s in b["locals"]] == [20, 20, 20]


def test_pretraining_and_evaluation_take_the_joint_count_from_the_data(data, tmp_path):
    cfg = C.resolve("cpu-smoke", cli_overrides=parse_set(["schedule.epochs=2", "schedule.epoch_steps=1",
                                                          "run.threads=1"]))
    assert cfg.model.encoder.num_joints == 25                     # the default says nothing about the data
    run = tmp_path / "run"
    pretrain(cfg, data_dir=data, benchmark="xview", run_dir=run, console=Console(quiet=True))
    enc, meta = load_encoder(run / "encoder.pt")
    assert enc.cfg.num_joints == 20 and meta["layout"] == "kinect_v1_20"
    assert json.loads((run / "run.json").read_text())["layout"] == "kinect_v1_20"
    r = api.retrieval(run, ks=(1,), device="cpu")
    assert r["split_sizes"] == {"gallery": 5, "query": 3} and 0 <= r["metrics"]["top1"] <= 100
