"""`make bench-gpu` (benchmarks/gpu.py) runs on a CPU too, so that it cannot rot: the
tiny model, 3 steps, eager, compiled ("aot_eager"), one-process DDP (gloo), FLOPs and
feature extraction, written to a results file of the test's own."""
from __future__ import annotations

import json
import subprocess
import sys

from test_train_helpers import ROOT, cli_env, make_dataset


def test_bench_gpu_runs_on_cpu(tmp_path):
    data = make_dataset(tmp_path / "ds")
    results = tmp_path / "results.json"
    env = {**cli_env(), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--device", "cpu", "--steps", "3", "--data", str(data),
           "--results", str(results)]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    saved = json.loads(results.read_text())["gpu_cpu"]
    assert saved["device"] == "cpu" and saved["model"] == "tiny" and saved["steps"] == 3
    for mode in ("eager", "compiled", "ddp1"):
        assert saved[f"{mode}_finite"] and saved[f"{mode}_samples_per_s"] > 0, mode
        assert 0 <= saved[f"{mode}_data_wait"] <= 1
    assert saved["train_gflops_per_sample"] > 0 and saved["features_samples_per_s"] > 0
    assert saved["mfu"] is None and saved["goal_met"] is False   # no GPU: no MFU, no claim
    assert saved["projected_hours_1gpu"] > saved["projected_hours_4gpu"] > 0
    assert saved["best"] in ("eager", "compiled") and "gpu_cpu.eager_step_ms" in run.stdout
