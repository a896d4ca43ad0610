"""Transfer across layouts end to end: an encoder pretrained (real pipeline, cpu-smoke) on
synthetic NTU-25 data is evaluated on NW-UCLA ingested with --layout ntu25 (retrieval and
linear run and report); the native 20-joint NW-UCLA is refused with a hint."""
import json
from pathlib import Path

import pytest
from rich.console import Console

from slim.eval import api
from slim.eval.target import TargetError
from slim.ingest.run import ingest
from slim.ingest.synth import SynthConfig, generate
from slim.model.io import load_encoder
from slim.train import config as C
from slim.train.configtools import parse_set
from slim.train.trainer import pretrain

FIX = Path(__file__).parent / "fixtures" / "nwucla"


def _nwucla_raw(folder: Path) -> Path:
    """The real excerpt, each file also under three more episodes (e10-e12), so that
    every split holds a few samples of several classes; a06 (only in view 3 in the
    excerpt) is also copied into view 2, so that every test class has training samples
    (a class absent from training is refused by the linear protocol)."""
    folder.mkdir()
    files = [(p, p.name) for p in FIX.glob("*.json")]
    files.append((FIX / "a06_s03_e02_v03.json", "a06_s03_e02_v02.json"))
    for p, base in files:
        for e in ("", "e10", "e11", "e12"):
            name = base if not e else base.replace(base[8:11], e)
            doc = json.loads(p.read_text())
            doc["file_name"] = name[:-5]
            (folder / name).write_text(json.dumps(doc))
    return folder


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    generate(root / "raw", SynthConfig(classes=4, performers=4, per_class=1, seed=0), progress=False)
    data = ingest("synthetic", root / "raw", root / "data", workers=0)
    cfg = C.resolve("cpu-smoke", cli_overrides=parse_set(["schedule.epochs=2", "schedule.epoch_steps=2",
                                                          "run.threads=1"]))
    run = root / "runs" / "ntu"
    pretrain(cfg, data_dir=data, benchmark="xsub", run_dir=run, console=Console(quiet=True))
    return root, run


def test_ntu25_encoder_evaluates_on_mapped_nwucla(source_run):
    root, run = source_run
    raw = _nwucla_raw(root / "nwucla_raw")
    mapped = ingest("nwucla", raw, root / "data", layout="ntu25")
    assert json.loads((run / "run.json").read_text())["layout"] == "ntu25"
    assert load_encoder(run / "encoder.pt")[1]["layout"] == "ntu25"   # the layout travels with it
    r = api.retrieval(run, data_dir=str(mapped), benchmark="xview", ks=(1,), device="cpu")
    assert 0 <= r["metrics"]["top1"] <= 100 and r["split_sizes"] == {"gallery": 24, "query": 12}
    lin = api.transfer(run, mapped, benchmark="xview", epochs=3, device="cpu")
    assert Path(lin["path"]).name.startswith("transfer_nwucla_xview_") and 0 <= lin["metrics"]["top1"] <= 100
    assert lin["layout"] == {"source_layout": "ntu25", "target_layout": "ntu25", "joints": 25}
    assert lin["selection"] == "val" and lin["source"]["dataset"] == "synthetic"

    native = ingest("nwucla", raw, root / "data")
    with pytest.raises(TargetError, match="layout kinect_v1_20, 20 joints") as e:
        api.retrieval(run, data_dir=str(native), benchmark="xview", device="cpu")
    assert "--layout ntu25" in e.value.hint
