"""`slim-train pretrain` end to end on a tiny synthetic dataset: checkpoints, SIGTERM and
SIGKILL followed by a resume that reaches bitwise the weights of an uninterrupted run
(CPU, same thread count, num_workers 0: the batches are a function of the step), clear
errors for corrupt and incompatible checkpoints, the encoder export, run.json."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
import torch
from rich.console import Console
from test_train_helpers import cli_cmd, cli_env, final_state, make_dataset, run_cli

from slim.train import config as C
from slim.train.trainer import pretrain

# Bitwise comparisons need the same CPU thread count in every process.
SMOKE = ("--benchmark", "xsub", "--preset", "cpu-smoke", "--set", "run.threads=2")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_resume")
    data = make_dataset(root)
    ref = root / "runs" / "reference"
    cfg = C.resolve("cpu-smoke", cli_overrides={"run.threads": 2})
    info = pretrain(cfg, data_dir=data, benchmark="xsub", run_dir=ref, preset="cpu-smoke",
                    console=Console(quiet=True))
    assert info["status"] == "finished"
    return {"root": root, "data": data, "ref": ref, "ref_state": final_state(ref)}


def _kill_after_first_checkpoint(world, out: Path, sig) -> subprocess.CompletedProcess:
    cmd = cli_cmd("pretrain", "--data", str(world["data"]), *SMOKE, "--out", str(out))
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=world["root"], env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    ckdir = out / "checkpoints"
    while not (ckdir.is_dir() and any(ckdir.glob("step-*.pt"))):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() - t0 < 180, "no checkpoint within 180 s"
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(cmd, proc.returncode, output, "")


def _assert_same_weights(state, ref_state):
    assert state.keys() == ref_state.keys()
    for k in ref_state:
        assert torch.equal(state[k], ref_state[k]), f"{k} differs from the uninterrupted run"


def test_sigterm_saves_then_same_command_resumes_bitwise(world):
    out = world["root"] / "runs" / "term"
    first = _kill_after_first_checkpoint(world, out, signal.SIGTERM)
    assert first.returncode == 143, first.stdout     # 128 + SIGTERM: not a success for `&&`
    assert "stopped by SIGTERM" in first.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and 0 < run["step"] < run["total_steps"]
    assert run["stopped_by"] == "SIGTERM"
    second = run_cli("pretrain", "--data", str(world["data"]), *SMOKE, "--out", str(out), cwd=world["root"])
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"resuming from step-{run['step']:08d}.pt at step {run['step']}" in second.stdout
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    _assert_same_weights(final_state(out), world["ref_state"])
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, run["total_steps"] + 1))  # each step logged once across the resume


def test_ctrl_c_saves_and_exits_130(world):
    out = world["root"] / "runs" / "int"
    first = _kill_after_first_checkpoint(world, out, signal.SIGINT)
    assert first.returncode == 130, first.stdout
    assert "stopped by SIGINT" in first.stdout and "Traceback" not in first.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and run["stopped_by"] == "SIGINT"
    assert (out / "checkpoints" / f"step-{run['step']:08d}.pt").is_file()


def test_sigkill_then_same_command_resumes_bitwise(world):
    out = world["root"] / "runs" / "kill"
    first = _kill_after_first_checkpoint(world, out, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    second = run_cli("pretrain", "--data", str(world["data"]), *SMOKE, "--out", str(out), cwd=world["root"])
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resuming from" in second.stdout
    _assert_same_weights(final_state(out), world["ref_state"])


def test_finished_run_rerun_has_nothing_to_do(world):
    res = _invoke(["pretrain", "--data", str(world["data"]), *SMOKE, "--out", str(world["ref"])])
    assert res.exit_code == 0 and "already finished" in res.output


def test_export_writes_the_teacher_encoder(world):
    from slim.model.io import load_encoder
    from slim.train.checkpoint import export_encoder
    from slim.train.runs import latest_run, read_run

    path = export_encoder(world["ref"])
    assert path == world["ref"] / "encoder.pt"
    encoder, meta = load_encoder(path)
    teacher = {k[len("teacher."):]: v for k, v in world["ref_state"].items() if k.startswith("teacher.")}
    _assert_same_weights(encoder.state_dict(), teacher)
    assert meta["source"] == "teacher" and meta["step"] == 12
    info = read_run(world["ref"])
    assert info["data"] == str(world["data"].resolve()) and info["benchmark"] == "xsub"
    assert info["dataset"] == "synthetic" and info["total_steps"] == 12
    assert latest_run(world["root"] / "runs") is not None
    res = _invoke(["export", str(world["ref"]), "--force"])
    assert res.exit_code == 0 and "encoder.pt" in res.output


def _invoke(args: list[str]):
    """The CLI in-process (errors go through `fail`: exit code 2, no traceback)."""
    from click.testing import CliRunner

    from slim.ingest import clitools
    from slim.train.cli import main
    runner = CliRunner()
    # fail() prints through module-level rich consoles bound to the real streams: point
    # them at the runner's captured output for this call.
    with runner.isolation() as (out, err, *_):
        old = clitools.console.file, clitools.err_console.file
        clitools.console.file = clitools.err_console.file = sys.stdout
        try:
            try:
                # click returns the exit code of `fail` (Exit) when not standalone
                ret = main.main(args, prog_name="slim-train", standalone_mode=False)
                code = ret if isinstance(ret, int) else 0
            except click.exceptions.Exit as e:
                code = e.exit_code
            exc = SystemExit(code) if code else None
        finally:
            clitools.console.file, clitools.err_console.file = old
        output = out.getvalue().decode()
    return _Result(code, exc, output)


class _Result:
    def __init__(self, exit_code, exception, output):
        # rich wraps long lines (paths) at the console width: compare unwrapped text
        self.exit_code, self.exception, self.output = exit_code, exception, output.replace("\n", "")


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil
    shutil.copytree(src, dst)
    (dst / "encoder.pt").unlink(missing_ok=True)
    return dst


def test_corrupt_checkpoint_is_a_clear_error(world):
    out = _copy_run(world["ref"], world["root"] / "runs" / "corrupt")
    latest = sorted((out / "checkpoints").glob("step-*.pt"))[-1]
    latest.write_bytes(latest.read_bytes()[:1000])
    res = _invoke(["pretrain", "--data", str(world["data"]), *SMOKE, "--out", str(out)])
    assert res.exit_code == 2
    assert "corrupt" in res.output and latest.name in res.output and "hint" in res.output


def test_incompatible_config_is_a_clear_error(world):
    out = _copy_run(world["ref"], world["root"] / "runs" / "other")
    res = _invoke(["pretrain", "--data", str(world["data"]), *SMOKE, "--set", "optim.base_lr=0.5",
                   "--out", str(out)])
    assert res.exit_code == 2
    assert "optim.base_lr" in res.output and "different config" in res.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(world):
    res = _invoke(["pretrain", "--data", str(world["data"]), *SMOKE, "--set", "run.device=cuda",
                   "--out", str(world["root"] / "runs" / "nocuda")])
    assert res.exit_code == 2 and "no CUDA device" in res.output and "run.device=cpu" in res.output


def test_same_command_same_folder_and_config_runs_named_after_the_file(world, monkeypatch):
    """Issue 18 item 8: data, benchmark and run folder are printed before the config; the
    same command reuses its folder (never `-2`); --config FILE names the run."""
    monkeypatch.chdir(world["root"])
    cfg = world["root"] / "tiny-lr.toml"
    cfg.write_text("[optim]\nbase_lr = 1e-3\n")
    args = ["pretrain", "--data", str(world["data"]), *SMOKE, "--config", str(cfg)]
    first = _invoke(args)
    assert first.exit_code == 0, first.output
    folder = Path("runs") / "synthetic-xsub-tiny-lr"
    assert f"run folder {folder} (new)" in first.output
    assert first.output.index("run folder") < first.output.index("[optim]")
    again = _invoke(args)
    assert again.exit_code == 0 and f"run folder {folder} (finished at step 12" in again.output
    assert "already finished" in again.output and not Path(f"{folder}-2").exists()


def test_extend_a_finished_run_only_when_asked(world):
    """Issue 18 item 22: a larger schedule.epochs on a finished run needs --extend, which
    continues from its last step with schedules recomputed for the new length."""
    out = _copy_run(world["ref"], world["root"] / "runs" / "extend")
    longer = ["pretrain", "--data", str(world["data"]), *SMOKE, "--set", "schedule.epochs=6", "--out", str(out)]
    res = _invoke(longer)
    assert res.exit_code == 2 and "--extend" in res.output and "schedule.epochs=4" in res.output
    res = _invoke([*longer, "--extend"])
    assert res.exit_code == 0, res.output
    assert "extending" in res.output and "recomputed for 18 steps" in res.output
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["total_steps"] == 18 and run["step"] == 18
    assert run["extended"] == [{"at_step": 12, "from_total_steps": 12, "to_total_steps": 18}]
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 19))
    from slim.train.checkpoint import latest_checkpoint
    assert latest_checkpoint(out)[0] == 18
    res = _invoke(["pretrain", "--data", str(world["data"]), *SMOKE, "--set", "schedule.epochs=5", "--extend",
                   "--out", str(out)])
    assert res.exit_code == 2 and "extending needs more" in res.output


def test_plot_draws_the_curves_of_runs(world, tmp_path):
    pytest.importorskip("matplotlib")
    res = _invoke(["plot", str(world["ref"]), str(world["ref"]), "--out", str(tmp_path / "curves")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG" and "curves.png" in res.output
    (tmp_path / "empty").mkdir()
    res = _invoke(["plot", str(tmp_path / "empty"), "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "metrics.jsonl not found" in res.output


def test_tensorboard_state_is_always_said(tmp_path):
    from slim.train.metrics import MetricsLog
    off = MetricsLog(tmp_path, tensorboard=False)
    assert off.tensorboard_note.startswith("TensorBoard: off") and "slim-train plot" in off.tensorboard_note
    off.close()
    on = MetricsLog(tmp_path, tensorboard=True)
    assert on.tensorboard_note.startswith(("TensorBoard: on", "TensorBoard: not installed"))
    on.close()
