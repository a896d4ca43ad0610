"""Pieces every protocol shares: the device, the train/test features of a target with
the cache in `<out>/eval/cache/`, and the carved validation part."""
from __future__ import annotations

from dataclasses import dataclass

import os

import numpy as np
import torch
import torch.distributed as dist

from .features import Features, cached_features
from .split import carve_validation
from .target import EvalTarget

SELECTIONS = ("val", "test")


@dataclass(frozen=True)
class FeatureOptions:
    """How frozen features are made (shared by retrieval, linear, transfer, features)."""
    pool: str = "cls+mean"        # cls | mean | cls+mean (DESIGN decision 8)
    batch_size: int = 256         # samples per encoder batch
    num_workers: int = 0          # DataLoader workers
    device: str = "auto"          # auto | cpu | cuda | cuda:N
    cache: bool = True            # keep features in <out>/eval/cache/
    progress: bool = True


def pick_device(name: str) -> torch.device:
    """auto: this process's GPU (LOCAL_RANK under torchrun) when there is one, else CPU;
    cpu; cuda / cuda:N (checked: the device must exist). Raises TargetError (a
    ValueError with a hint) for anything else or a GPU that is not there."""
    from .target import TargetError
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    kind, _, index = str(name).partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise TargetError(f"--device {name}: not a device name",
                          "use --device auto (a GPU when there is one), cpu, cuda or cuda:N")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise TargetError(f"--device {name}: no CUDA device is visible to torch {torch.__version__} "
                              "on this machine",
                              "use --device cpu (or auto); for a GPU, install a CUDA build of torch into .venv")
        if index and int(index) >= torch.cuda.device_count():
            raise TargetError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)",
                              f"use cuda:0 ... cuda:{torch.cuda.device_count() - 1}")
    return torch.device(name)


def is_main_process() -> bool:
    """True outside torchrun and on rank 0: the one process that writes and prints."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def split_features(target: EvalTarget, part: str, opts: FeatureOptions,
                   column: str | None = None) -> Features:
    """Features of `<benchmark>_<part>` (or of an explicit manifest column)."""
    column = column or f"{target.benchmark}_{part}"
    return cached_features(target.encoder, target.sha256, target.data_dir, column,
                           target.out_dir / "eval" / "cache" if opts.cache else None,
                           pool=opts.pool, batch_size=opts.batch_size,
                           device=pick_device(opts.device), num_workers=opts.num_workers,
                           progress=opts.progress, out_len=target.eval_len)


def carve(y: torch.Tensor | np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, val) positions of a training split, stratified (see split.carve_validation)."""
    y = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    return carve_validation(y, fraction, np.random.default_rng(seed))
