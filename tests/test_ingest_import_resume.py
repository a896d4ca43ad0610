"""An import from a preprocessed file (`--from`) killed with SIGKILL at a deterministic
point (importer.KILL_AT_ENV fault injection): no card vouches for the half-written
folder, and the same command run again ends with the same dataset, byte for byte, and
the same accounting as an import that was never interrupted."""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slim.ingest import ntu_names
from slim.ingest.importer import CHUNK_SAMPLES, KILL_AT_ENV
from slim.ingest.inventory import check
from slim.ingest.verify import verify

N = 2 * CHUNK_SAMPLES + 40     # three chunks


def _names(n: int) -> list[str]:
    out = [f"S{s:03d}C{c:03d}P{p:03d}R001A{a:03d}" for s in (1, 2) for c in (1, 2, 3)
           for p in (1, 3) for a in range(1, 61)]
    return sorted(out)[:n]


def _pyskl(path: Path, n: int = N, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    anns = []
    for k, name in enumerate(_names(n)):
        kp = rng.uniform(0.5, 3.5, size=(1 + (k % 7 == 0), 3 + k % 5, 25, 3)).astype(np.float16)
        anns.append(dict(frame_dir=name, label=int(name[-3:]) - 1, total_frames=kp.shape[1],
                         keypoint=kp))
    anns.append(None)          # a reported skip, so the accounting has one
    names = [a["frame_dir"] for a in anns if a]
    tr = ntu_names.XSUB_TRAIN_60
    split = dict(xsub_train=[x for x in names if int(x[9:12]) in tr],
                 xsub_val=[x for x in names if int(x[9:12]) not in tr],
                 xview_train=[x for x in names if "C001" not in x],
                 xview_val=[x for x in names if "C001" in x])
    with open(path, "wb") as fh:
        pickle.dump(dict(split=split, annotations=anns), fh, protocol=2)
    return path


def _cmd(src: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "slim.ingest.cli", "ntu60", "--from", "pyskl", str(src),
            "--out", str(out)]


def _run(src, out, kill_at=None):
    env = {k: v for k, v in os.environ.items() if k != KILL_AT_ENV}
    env["COLUMNS"] = "200"
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    return subprocess.run(_cmd(src, out), env=env, capture_output=True, text=True, timeout=300)


def _card(out: Path) -> dict:
    return json.loads((out / "ntu60" / "card.json").read_text())


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    src = _pyskl(root / "ntu60_3danno.pkl")
    r = _run(src, root / "data")
    assert r.returncode == 0, r.stdout + r.stderr
    return src, _card(root / "data")


def _same_dataset(card, ref):
    assert card["outputs"] == ref["outputs"]          # samples.h5, manifest, every shard
    assert card["source"] == ref["source"] and card["skipped"] == ref["skipped"]
    assert card["accounting"] == ref["accounting"] and check(card) == []
    s = card["source"]
    assert s["entries_seen"] == N + 1 == s["samples_written"] + s["entries_skipped"]


@pytest.mark.parametrize("kill_at", ["chunk:1", "chunk:2", "write:1", "write:3"])
def test_killed_import_reruns_to_the_same_dataset(clean, tmp_path, kill_at):
    src, ref = clean
    out = tmp_path / "data"
    r = _run(src, out, kill_at)
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    assert not (out / "ntu60" / "card.json").exists()
    assert (out / "ntu60" / ".work").is_dir()           # it really stopped mid-way
    assert verify(out / "ntu60")[0].endswith("did not finish; re-run it)")
    again = _run(src, out)
    assert again.returncode == 0, again.stdout + again.stderr
    _same_dataset(_card(out), ref)
    assert not (out / "ntu60" / ".work").exists() and not (out / "ntu60" / "shards.tmp").exists()
    assert not (out / "ntu60" / "samples.h5.tmp").exists()


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signalled_import_says_so_without_a_traceback_and_reruns(clean, tmp_path, sig):
    src, ref = clean
    out = tmp_path / "data"
    r = _run(src, out, f"write:2={sig}")
    assert r.returncode == 128 + int(signal.Signals[sig]), r.stdout + r.stderr
    said = " ".join((r.stdout + r.stderr).split())
    assert f"interrupted by {sig}" in said and "run the same command" in said
    assert "Traceback" not in said and not (out / "ntu60" / "card.json").exists()
    assert not (out / "ntu60" / "samples.h5.tmp").exists()     # the writer cleaned up
    again = _run(src, out)
    assert again.returncode == 0, again.stdout + again.stderr
    _same_dataset(_card(out), ref)


def test_killed_import_over_a_finished_one_leaves_no_stale_card(clean, tmp_path):
    """A finished import of file A, then an import of file B killed mid-way: A's card must
    not survive beside B's half-written outputs (A's command would call them complete)."""
    src, ref = clean
    out = tmp_path / "data"
    assert _run(src, out).returncode == 0
    other = _pyskl(tmp_path / "other.pkl", seed=1)
    assert _run(other, out, "write:2").returncode == -signal.SIGKILL
    assert not (out / "ntu60" / "card.json").exists()
    again = _run(src, out)
    assert again.returncode == 0 and "already complete" not in again.stdout
    _same_dataset(_card(out), ref)
