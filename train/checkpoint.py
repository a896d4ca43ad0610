"""Pretraining checkpoints: complete (student, teacher, heads, optimizer, step, every
rank's RNG states, config, versions), atomic (temporary file + rename, so a kill never
leaves a half-written `step-*.pt`), the last K kept; and the teacher-encoder export.

Layout: `<run>/checkpoints/step-00001250.pt` where the number is the count of completed
steps. Files are plain dicts loadable with `torch.load(weights_only=True)`."""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from slim.ingest.versions import code_version

FORMAT = "slim-pretrain-checkpoint"
FORMAT_VERSION = 1
CKPT_DIR = "checkpoints"
ENCODER_FILE = "encoder.pt"
_NAME = re.compile(r"^step-(\d{8,})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file, `hint` says what to do."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def ckpt_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CKPT_DIR


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """[(step, path)] of complete checkpoint files, by step."""
    d = ckpt_dir(run_dir)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def remove_partial(run_dir: Path) -> list[Path]:
    """Delete temporary files left by a process killed while saving."""
    d = ckpt_dir(run_dir)
    gone = sorted(d.glob("*.tmp")) if d.is_dir() else []
    for p in gone:
        p.unlink()
    return gone


def save_checkpoint(run_dir: Path, *, step: int, total_steps: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, rng: list[dict], config_toml: str,
                    world_size: int, run_info: dict, keep_last: int, fault=None) -> Path:
    """Write `step-<step>.pt` atomically, then delete all but the newest `keep_last`.

    model: the SLiM module (student, teacher, heads and teacher heads, unwrapped);
    rng: one capture_rng() dict per rank, in rank order. The payload goes to
    `step-<step>.pt.tmp`, is fsynced, renamed, and the folder fsynced: a process (or node)
    killed at any point leaves either the complete file or a `.tmp` that no reader picks
    (`list_checkpoints` matches `step-<8+ digits>.pt` only; `remove_partial` deletes it).
    Under torchrun only rank 0 calls this (the trainer gathers every rank's RNG first).
    fault: test hook (`slim.train.faults`), called with the open temporary file after
    the payload is written and before the rename."""
    d = ckpt_dir(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "step": int(step), "total_steps": int(total_steps),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "rng": rng, "world_size": int(world_size),
        "config": config_toml,
        "versions": {"code": code_version(), "torch": str(torch.__version__)},
        "run": dict(run_info),
    }
    path = checkpoint_path(run_dir, step)
    tmp = d / (path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        if fault is not None:
            fault(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(d)
    for _, old in list_checkpoints(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def _fsync_dir(d: Path) -> None:
    """Make a rename in `d` durable (POSIX: the directory entry is data of the folder);
    best effort on file systems that refuse it."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """`<run>/checkpoints/step-<step, 8 digits>.pt` (whether or not it exists)."""
    return ckpt_dir(run_dir) / f"step-{int(step):08d}.pt"


def load_checkpoint(path: Path) -> dict:
    """Read and check a checkpoint file; any failure is a CheckpointError naming it."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every reader failure means the same thing here
        older = [p for s, p in list_checkpoints(path.parent.parent) if p != path]
        hint = (f"delete {path} to resume from {older[-1].name}" if older
                else f"delete {path.parent} to start the run again")
        raise CheckpointError(f"{path} is corrupt or not a checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})", hint) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file",
                              "encoder files (encoder.pt) cannot be resumed from; point --out at a run folder")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {payload.get('format_version')}, "
                              f"this code reads {FORMAT_VERSION}",
                              "resume with the code version that wrote it "
                              f"({payload.get('versions', {}).get('code', 'unknown')}) or start a new run")
    return payload


def latest_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def export_encoder(run_dir: str | os.PathLike) -> Path:
    """Write `<run_dir>/encoder.pt` (the teacher encoder, encoder-only, strict keys) from
    the latest checkpoint, unless it exists and is newer than that checkpoint. Returns
    its path. Raises CheckpointError when the run has no checkpoint or it is unreadable."""
    from slim.model.io import save_encoder
    from slim.model.slim import SLiM

    from .config import from_toml_text

    run_dir = Path(run_dir)
    latest = latest_checkpoint(run_dir)
    if latest is None:
        raise CheckpointError(f"{ckpt_dir(run_dir)} holds no checkpoint to export",
                              f"let the run write its first checkpoint: re-run the `slim-train pretrain` "
                              f"command that made {run_dir} (its options are in {run_dir / 'config.toml'})")
    step, path = latest
    out = run_dir / ENCODER_FILE
    if out.is_file() and out.stat().st_mtime >= path.stat().st_mtime:
        return out
    payload = load_checkpoint(path)
    cfg = from_toml_text(payload["config"])
    model = SLiM(cfg.model)
    load_model_state(model, payload["model"], path)
    extra = {"run": run_dir.name, "step": int(step), "total_steps": int(payload["total_steps"]),
             "code_version": payload["versions"]["code"], "source": "teacher",
             "dataset": payload["run"].get("dataset"), "benchmark": payload["run"].get("benchmark"),
             "layout": payload["run"].get("layout"), "global_len": int(cfg.pipeline.global_len)}
    return save_encoder(out, model.teacher, extra=extra)


def load_model_state(model: torch.nn.Module, state: dict, path: Path) -> None:
    """Strict load with an error that names the file and the mismatching keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k} {list(state[k].shape)} vs {list(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{path} does not match the model built from its config: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, shape mismatches {shapes[:5]}",
            "the model code changed since the checkpoint was written: resume with that code version "
            "or start a new run folder")
    model.load_state_dict(state, strict=True)
