"""No user error ends in a traceback: bad invocations of slim-ingest, slim-train and
slim-eval each give `error: ...` + `hint: ...`, exit code 2; a run that fails to start
says so in run.json."""
import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from slim.eval.cli import main as slim_eval
from slim.ingest.cli import main as slim_ingest
from slim.ingest.run import ingest
from slim.model.encoder import Encoder, EncoderConfig
from slim.model.io import save_encoder
from slim.train.cli import main as slim_train

from test_ingest_run import small_ntu

CLIS = {"slim-ingest": slim_ingest, "slim-train": slim_train, "slim-eval": slim_eval}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """D: 4 NTU-format samples (xsub: 2 training samples, one per class, and a test class
    absent from training; xview: 3 training classes, one sample each, test class 1);
    E: 2 samples, camera 1 only (xview training split empty); a tiny encoder file;
    damaged copies; a folder with no dataset files."""
    root = tmp_path_factory.mktemp("clierr")
    raw = root / "raw"
    raw.mkdir()
    for k, name in enumerate(["S001C001P001R001A001", "S001C002P001R001A002", "S001C002P003R001A001",
                              "S001C003P003R001A003"]):
        small_ntu(raw / f"{name}.skeleton", n_frames=24, seed=k)
    d = ingest("synthetic", raw, root / "data", workers=0)
    raw_e = root / "raw_e"
    raw_e.mkdir()
    for k, name in enumerate(["S001C001P001R001A001", "S001C001P003R001A002"]):
        small_ntu(raw_e / f"{name}.skeleton", n_frames=24, seed=k)
    e = ingest("synthetic", raw_e, root / "data_e", workers=0)
    enc = root / "enc.pt"
    save_encoder(enc, Encoder(EncoderConfig.tiny(dim=32, depth=1, heads=2),
                              generator=torch.Generator().manual_seed(0)))
    (root / "junk.pt").write_bytes(b"not a torch file")
    bad = root / "bad"
    shutil.copytree(d, bad)
    (bad / "manifest.parquet").write_bytes(b"PAR1 garbage")
    (bad / "card.json").write_text("{not json")
    (root / "noraw").mkdir()
    (root / "noraw" / "notes.txt").write_text("x")
    (root / "bad.toml").write_text("[optim\nbase_lr = ")
    (root / "fakerun").mkdir()
    (root / "fakerun" / "run.json").write_text(json.dumps({"data": str(d), "benchmark": "xsub"}))
    return {"root": root, "D": d, "E": e, "ENC": enc, "JUNK": root / "junk.pt", "BAD": bad,
            "NORAW": root / "noraw", "RAW": raw, "TOML": root / "bad.toml", "FAKERUN": root / "fakerun"}


FAST_EVAL = ["--no-progress", "--feature-batch", "8", "--epochs", "1"]
CASES = [
    # slim-ingest
    ("slim-ingest", "ntu60 --raw {root}/nope --out {root}/o1", "no such folder"),
    ("slim-ingest", "ntu60 --raw {NORAW} --out {root}/o2", "no *.skeleton files"),
    ("slim-ingest", "pku2 --raw {RAW} --out {root}/o3", "no AxxNyy-V.txt"),
    ("slim-ingest", "ntu60 --raw {RAW} --workers x", "workers"),
    ("slim-ingest", "ntu61 --raw {RAW}", "No such command"),
    ("slim-ingest", "verify {root}/nope", "no such folder"),
    ("slim-ingest", "info {root}/nope", "missing"),
    ("slim-ingest", "info {BAD}", "cannot be read"),
    ("slim-ingest", "show {root}/nope S001", "does not exist"),
    # slim-train
    ("slim-train", "pretrain --data {root}/nope --out {root}/r1", "not an ingested dataset"),
    ("slim-train", "pretrain --data {D} --benchmark xset --out {root}/r2", "not defined"),
    ("slim-train", "pretrain --data {D} --set optim.nope=1 --out {root}/r3", "nope"),
    ("slim-train", "pretrain --data {D} --set data.global_batch=abc --out {root}/r4", "global_batch"),
    ("slim-train", "pretrain --data {D} --config {root}/missing.toml", "does not exist"),
    ("slim-train", "pretrain --data {D} --config {TOML} --out {root}/r5", "toml"),
    ("slim-train", "pretrain --data {E} --benchmark xview --preset cpu-smoke --out {root}/r_empty",
     "training split is empty"),
    ("slim-train", "pretrain --data {E} --benchmark xview --preset cpu-smoke --set data.source=shards "
                   "--out {root}/r_empty2", "training split is empty"),
    ("slim-train", "pretrain --data {D} --preset paper --set run.device=cpu --out {root}/r_big",
     "--set data.global_batch=2"),
    ("slim-train", "pretrain --data {D} --benchmark xview --preset cpu-smoke --set data.global_batch=2 "
                   "--set data.source=shards --set data.num_workers=5 --out {root}/r_shards",
     "shards for"),
    ("slim-train", "export {root}/nope", "does not exist"),
    # slim-eval
    ("slim-eval", "retrieval --run {root}/nope --no-progress", "not a run folder"),
    ("slim-eval", "retrieval --encoder {root}/none.pt --data {D} --no-progress", "no such encoder file"),
    ("slim-eval", "retrieval --encoder {JUNK} --data {D} --no-progress", "cannot be read"),
    ("slim-eval", "retrieval --encoder {ENC} --data {BAD} --no-progress", "cannot be read"),
    ("slim-eval", "retrieval --encoder {ENC} --data {D} --benchmark xset --no-progress", "not one of"),
    ("slim-eval", "retrieval --encoder {ENC} --data {E} --benchmark xview --no-progress", "is empty"),
    ("slim-eval", "retrieval --encoder {ENC} --no-progress", "no data folder"),
    ("slim-eval", "retrieval --encoder random:x --run {FAKERUN} --no-progress", "seed"),
    ("slim-eval", "linear --encoder {ENC} --data {D} --benchmark xsub " + " ".join(FAST_EVAL),
     "no training sample"),
    ("slim-eval", "linear --encoder {ENC} --data {D} --benchmark xview " + " ".join(FAST_EVAL),
     "validation part"),
    ("slim-eval", "linear --encoder {ENC} --data {D} --benchmark xview --val-fraction 1.5 "
     + " ".join(FAST_EVAL), "--val-fraction"),
    ("slim-eval", "linear --encoder {ENC} --data {D} --benchmark xview --val-fraction 0 --lr 0.1 --lr 0.3 "
     + " ".join(FAST_EVAL), "--lr"),
    ("slim-eval", "finetune --encoder {ENC} --data {D} --benchmark xview --epochs 1", "validation part"),
    ("slim-eval", "semi --encoder {ENC} --data {D} --ratio 0.5 --epochs 1", "ratio"),
    ("slim-eval", "flops --data {root}/nope", "nope"),
    ("slim-eval", "report {root}/nope", "no such run folder"),
    ("slim-eval", "linaer --run x", "No such command"),
]


@pytest.mark.parametrize("cli,args,words", CASES, ids=[f"{c[0]} {c[1][:40]}" for c in CASES])
def test_bad_invocation_is_a_clean_error(world, cli, args, words, monkeypatch):
    monkeypatch.chdir(world["root"])          # no runs/ or data/ here to default to
    argv = args.format(**{k: str(v) for k, v in world.items()}).split()
    r = CliRunner().invoke(CLIS[cli], argv, catch_exceptions=True)
    out = r.output
    assert "Traceback" not in out, out
    assert r.exception is None or isinstance(r.exception, SystemExit), \
        f"uncaught {type(r.exception).__name__}: {r.exception}\n{out}"
    assert r.exit_code == 2, out
    assert any(line.startswith("error: ") for line in out.splitlines()), out
    assert any(line.startswith("hint: ") for line in out.splitlines()), out
    assert words.lower() in " ".join(out.lower().split()), out      # rich wraps long lines


def test_a_run_that_fails_to_start_says_so(world, monkeypatch):
    monkeypatch.chdir(world["root"])
    run = world["root"] / "r_fail"
    r = CliRunner().invoke(slim_train, ["pretrain", "--data", str(world["E"]), "--benchmark", "xview",
                                        "--preset", "cpu-smoke", "--out", str(run)])
    assert r.exit_code == 2
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and "training split is empty" in info["error"]
