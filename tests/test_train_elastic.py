"""Elastic training under torchrun (issue 17 item 4): two gloo workers on 127.0.0.1 with
a c10d rendezvous and `--max-restarts 2`. The first launch loses rank 1 (SIGKILL after
step 7), the first restart loses rank 0 in the middle of writing the checkpoint of step 9
(its temporary file half written); the second restart resumes from the last complete
checkpoint (step 6), ignores and removes the partial file, finishes all 12 steps, and
ends with bitwise the weights of an uninterrupted 2-worker run (CPU, one thread per
worker, num_workers 0: the batches are a function of the step, every rank's RNG state is
in the checkpoint). run.json tells the story (restarts, resumes, final status)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train_helpers import cli_env, final_state, make_dataset

from slim.train.distributed import ProcessGroupError, check_elastic_env
from slim.train.faults import Fault, FaultPlan, parse

ARGS = ("pretrain", "--benchmark", "xsub", "--preset", "cpu-smoke", "--set", "run.threads=1")
LIMIT_S = 300   # per torchrun launch; measured 12 s (reference) and 33 s (faulted, 3 attempts) on 2 cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (children first), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _torchrun(data: Path, out: Path, cwd: Path, restarts: int, faults: str | None) -> subprocess.CompletedProcess:
    """torchrun on one node of 1:1, 2 workers, c10d rendezvous on a free loopback port;
    on timeout the launcher and every process below it are killed (torchrun starts its
    workers in sessions of their own, so one killpg is not enough)."""
    env = cli_env()
    for key in list(env):
        if key.startswith(("TORCHELASTIC_", "MASTER_")) or key in ("LOCAL_RANK", "SLIM_FAULT_KILL"):
            env.pop(key)
    env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"   # see distributed.check_elastic_env
    if faults:
        env["SLIM_FAULT_KILL"] = faults
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1:1", "--nproc-per-node", "2",
           "--max-restarts", str(restarts), "--rdzv-backend", "c10d",
           "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--monitor-interval", "0.1",
           "-m", "slim.train.cli", *ARGS, "--data", str(data), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        for pid in [proc.pid, *_descendants(proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        output, _ = proc.communicate(timeout=30)
        pytest.fail(f"torchrun did not finish within {LIMIT_S} s:\n{output[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, output, "")


def test_lost_workers_restart_from_the_last_complete_checkpoint_bitwise(tmp_path):
    data = make_dataset(tmp_path)
    ref = _torchrun(data, tmp_path / "ref", tmp_path, restarts=0, faults=None)
    assert ref.returncode == 0, ref.stdout[-4000:]

    out = tmp_path / "elastic"
    res = _torchrun(data, out, tmp_path, restarts=2, faults="0:1:7,1:0:9:save")
    log = res.stdout
    assert res.returncode == 0, log[-4000:]
    # Both faults really happened: torchrun saw a worker die by SIGKILL twice.
    assert "(exitcode: -9) local_rank: 1" in log and "(exitcode: -9) local_rank: 0" in log, log[-4000:]
    # Restart 1 resumes from step 6 (rank 1 died after step 7, before the step-9 save).
    assert "resuming from step-00000006.pt at step 6 of 12 (elastic restart 1)" in log
    # Restart 2: the half-written step 9 is never chosen; step 6 is still the last complete one.
    assert "removed step-00000009.pt.tmp: a checkpoint whose save was cut off" in log
    assert "resuming from step-00000006.pt at step 6 of 12 (elastic restart 2)" in log
    assert log.count("resuming from") == 2

    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["step"] == run["total_steps"] == 12
    assert run["restarts"] == 2 and run["world_size"] == 2
    first, second = run["resumes"]
    assert (first["step"], first["restart"], first["previous_status"]) == (6, 1, "failed")
    assert "gloo" in first["previous_error"]   # rank 0 saw rank 1 go ("Connection reset/closed by peer")
    assert (second["step"], second["restart"], second["previous_status"]) == (6, 2, "running")  # rank 0 lost
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step-00000009.pt", "step-00000012.pt"]          # keep_last 2, no .tmp left
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))                                # each step logged once

    got, want = final_state(out), final_state(tmp_path / "ref")
    assert got.keys() == want.keys()
    for k in want:
        assert torch.equal(got[k], want[k]), f"{k} differs from the uninterrupted 2-worker run"


def test_fault_spec_is_checked_and_fires_only_in_its_attempt(monkeypatch):
    assert parse("0:1:7, 1:0:9:save") == [Fault(0, 1, 7, False), Fault(1, 0, 9, True)]
    for bad in ("7", "0:1:x", "0:1:7:later", "0:1:9:save"):
        with pytest.raises(ValueError, match="SLIM_FAULT_KILL"):
            parse(bad)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    plan = FaultPlan(rank=0, spec="0:0:3,1:0:5:save")
    plan.after_step(3)                        # attempt 0's fault: not this attempt, nothing happens
    assert plan.save_hook(4) is None and plan.save_hook(5) is not None


def test_restarts_with_a_shared_rendezvous_store_are_refused():
    """torchrun's shared store outlives the workers: a restart can read stale addresses
    and hang (pytorch/pytorch#135712); the worker says so and how to launch instead."""
    shared = {"TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_MAX_RESTARTS": "3"}
    with pytest.raises(ProcessGroupError, match="135712") as exc:
        check_elastic_env(shared)
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in exc.value.hint
    check_elastic_env({**shared, "TORCHELASTIC_USE_AGENT_STORE": "False"})   # a new store per attempt
    check_elastic_env({**shared, "TORCHELASTIC_MAX_RESTARTS": "0"})          # no restart, no stale keys
    check_elastic_env({})                                                    # plain RANK/WORLD_SIZE
