"""Shared pieces of the train tests (no tests here): a tiny synthetic dataset, a
deterministic in-memory batch source with the pipeline's batch layout, CLI runners and
the DDP worker (importable by spawned processes), and a few tests of small helpers
(progress line, bench output) that need no dataset."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def make_dataset(root: Path) -> Path:
    """Synthetic NTU-format dataset (4 classes x 4 performers x 1 replication), ingested."""
    from slim.ingest.run import ingest
    from slim.ingest.synth import SynthConfig, generate
    generate(root / "raw", SynthConfig(classes=4, performers=4, per_class=1, seed=0), progress=False)
    return ingest("synthetic", root / "raw", root / "data", workers=0)


def fake_source(seed: int = 0, nan_at: int | None = None, counts=(1, 1, 1)):
    """A BatchSource whose global batch at step s is a function of (seed, s) only; rank r
    takes rows [r * B, (r + 1) * B). So one process with global batch W*B sees exactly
    the union of what W ranks see. `nan_at`: step whose first sample is NaN."""
    def make(step: int, gb: int) -> dict:
        g = torch.Generator().manual_seed(seed * 100_003 + step)
        b = {"global": torch.randn(gb, 2, 64, 25, 3, generator=g) * 0.3,
             "global_mask": torch.rand(gb, 2, 200, generator=g) < 0.7,
             "locals": [], "ids": [f"S{step:03d}_{i}" for i in range(gb)]}
        if nan_at == step:
            b["global"][0] = float("nan")
        for length, c in zip((32, 16, 8), counts):
            n = 2 * c
            b["locals"].append({"x": torch.randn(gb, n, length, 25, 3, generator=g) * 0.3,
                                "mask": torch.rand(gb, n, length // 8 * 25, generator=g) < 0.5,
                                "anchor": torch.tensor([0] * c + [1] * c)})
        return b

    def source(start: int, rank: int, world: int, per_rank: int):
        step = start
        while True:
            full = make(step, per_rank * world)
            sl = slice(rank * per_rank, (rank + 1) * per_rank)
            yield {"global": full["global"][sl], "global_mask": full["global_mask"][sl],
                   "locals": [{"x": s["x"][sl], "mask": s["mask"][sl], "anchor": s["anchor"]}
                              for s in full["locals"]],
                   "index": torch.arange(per_rank), "ids": full["ids"][sl]}
            step += 1
    return source


def cli_env() -> dict:
    env = dict(os.environ)
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    env["COLUMNS"] = "200"
    return env


def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "slim.train.cli", *args]


def run_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), cwd=cwd, env=cli_env(), capture_output=True, text=True,
                          timeout=timeout)


def final_state(run_dir: Path) -> dict:
    """Model state dict of the newest checkpoint of a run."""
    from slim.train.checkpoint import latest_checkpoint, load_checkpoint
    return load_checkpoint(latest_checkpoint(run_dir)[1])["model"]


def ddp_worker(rank: int, world: int, port: int, cfg_toml: str, run_dir: str, out_dir: str) -> None:
    """One rank of a gloo run driven by fake_source; saves its own student weights."""
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from rich.console import Console

    from slim.train.config import from_toml_text
    from slim.train import trainer

    captured = {}
    cfg = from_toml_text(cfg_toml)
    trainer.pretrain(cfg, data_dir=Path(out_dir), benchmark="xsub", run_dir=Path(run_dir),
                     batch_source=fake_source(), console=Console(file=open(os.devnull, "w")),
                     model_hook=lambda m: captured.setdefault("model", m))
    torch.save({k: v.detach().clone() for k, v in captured["model"].state_dict().items()},
               Path(out_dir) / f"rank{rank}.pt")


def test_progress_keeps_step_total_and_eta_at_80_columns():
    """Issue 18 item 9 (in this helpers module so it needs no dataset)."""
    import io

    from rich.console import Console

    from slim.train.progress import StepProgress
    stats = {"loss": 1.23456, "mfm": 0.5, "glcl": 0.6, "koleo": -0.1, "samples_per_s": 17.5,
             "data_wait": 0.02, "lr": 1e-4}
    term = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
    bar = StepProgress(term, 12000, 0)
    try:
        bar.update(345, stats)
        shown = Console(file=io.StringIO(), width=80, color_system=None)
        shown.print(bar._progress.make_tasks_table(bar._progress.tasks))
        line = shown.file.getvalue().rstrip("\n")
    finally:
        bar.close()
    assert "\n" not in line and len(line) <= 80
    assert "345/12000" in line and "eta" in line and "loss 1.2346" in line
    plain = Console(file=io.StringIO(), width=80)
    StepProgress(plain, 12000, 0).update(345, stats)
    assert plain.file.getvalue().startswith("step 345/12000: loss 1.2346")


def test_bench_figures_go_to_the_local_file_unless_published(tmp_path, monkeypatch):
    """Issue 18 item 15: `make bench` never rewrites the README's published figures."""
    import json
    import sys

    sys.path.insert(0, str(ROOT))
    from benchmarks import common
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results.json")
    monkeypatch.setattr(common, "LOCAL", tmp_path / "local.json")
    monkeypatch.delenv(common.PUBLISH_ENV, raising=False)
    common.record("x", {"a": 1.0})
    assert json.loads((tmp_path / "local.json").read_text())["x"]["a"] == 1.0
    assert not (tmp_path / "results.json").exists()
    monkeypatch.setenv(common.PUBLISH_ENV, "1")
    common.record("x", {"a": 2.0})
    assert json.loads((tmp_path / "results.json").read_text())["x"]["a"] == 2.0
