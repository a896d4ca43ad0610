"""The small evaluation world several eval tests share: a 4-class synthetic dataset
(4 performers, 1 replication) and a run folder holding a tiny random encoder."""
import json
from pathlib import Path

import torch

from slim.ingest.run import ingest
from slim.ingest.synth import SynthConfig, generate
from slim.model.encoder import Encoder, EncoderConfig
from slim.model.io import save_encoder

CFG = EncoderConfig.tiny(dim=32, depth=1, heads=2)


def make_eval_world(root: Path) -> tuple[Path, Path]:
    """Under `root`: raw/, data/synthetic and runs/r1 (encoder.pt of CFG, seed 1, and a
    finished run.json on synthetic xsub). Returns (data folder, run folder)."""
    generate(root / "raw", SynthConfig(classes=4, performers=4, per_class=1, seed=0), progress=False)
    data = ingest("synthetic", root / "raw", root / "data", workers=0)
    run = root / "runs" / "r1"
    run.mkdir(parents=True)
    save_encoder(run / "encoder.pt", Encoder(CFG, generator=torch.Generator().manual_seed(1)))
    (run / "run.json").write_text(json.dumps({"data": str(data), "dataset": "synthetic",
                                              "benchmark": "xsub", "status": "finished"}))
    return data, run
