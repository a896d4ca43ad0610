"""`slim-ingest` stopped by SIGTERM / Ctrl-C mid-run: the whole process tree stops (no
worker survives the main process), finished chunks are kept, the message says how many
and how to resume, the exit code is 128 + the signal, and the same command resumes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from slim.ingest.verify import verify


def _write_raw(raw: Path, n: int, frames: int) -> None:
    """n single-body NTU-format files named for the synthetic rules (performers 1-4)."""
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    body = "72057594037931101 0 1 1 1 1 0 0 0 2"
    for k in range(n):
        lines = [str(frames)]
        for xyz in rng.uniform(0.1, 3, size=(frames, 25, 3)):
            lines += ["1", body, "25"] + [f"{x:.6f} {y:.6f} {z:.6f} 1 1 1 1 0 0 0 0 2" for x, y, z in xyz]
        name = f"S001C00{1 + k % 3}P00{1 + k % 4}R{k:03d}A{1 + k % 5:03d}.skeleton"
        (raw / name).write_text("\n".join(lines) + "\n")


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc (no psutil)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_every_worker_keeps_chunks_and_rerun_resumes(tmp_path, sig):
    raw, out = tmp_path / "raw", tmp_path / "data"
    _write_raw(raw, 96, 150)
    cmd = [sys.executable, "-m", "slim.ingest.cli", "synthetic", "--raw", str(raw), "--out", str(out),
           "--workers", "2"]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    work = out / "synthetic" / ".work"
    t0, workers = time.monotonic(), set()
    while not (work.is_dir() and any(work.glob("chunk-*.npz"))):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() - t0 < 120, "no chunk parsed within 120 s"
        workers |= _descendants(proc.pid)
        time.sleep(0.01)
    workers |= _descendants(proc.pid)
    assert workers, "the ingest ran no worker process"
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, output
    said = " ".join(output.split())
    assert f"interrupted by {sig.name};" in said and "run the same command to resume" in said, output
    assert "Traceback" not in output
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in workers if _alive(p)], "worker processes outlived slim-ingest"
    kept = len(list(work.glob("chunk-*.npz")))
    assert f"{kept} of 16 chunks kept" in said or "writing the outputs was stopped" in said
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    if kept < 16:
        assert f"resuming: {kept} of 16 chunks already parsed" in again.stdout
    assert verify(out / "synthetic") == [] and not work.exists()
