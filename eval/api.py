"""Library entry points (what `make demo` and notebooks call): each resolves its inputs
like the CLI, writes the same result file, and returns the record (a dict with
`metrics`, in percent, and `path`).

    from slim.eval import api
    api.retrieval("runs/demo", ks=(1,))                       # trained teacher encoder
    api.linear("runs/demo", encoder="random:0", epochs=10)    # the baseline
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .common import FeatureOptions
from .finetune import FinetuneConfig
from .linear import LinearConfig, run_linear
from .retrieval import RetrievalConfig, run_retrieval
from .target import EvalTarget, resolve_target
from .transfer import run_transfer
from .tune import FullFinetuneConfig, SemiConfig, run_full_finetune, run_semi


def open_target(run_or_encoder, data_dir=None, benchmark=None, encoder: str = "trained") -> EvalTarget:
    """run_or_encoder: a run folder, or an encoder file (then data_dir is required).
    encoder: "trained" (the run's / the file's) or "random:SEED"."""
    p = Path(run_or_encoder) if run_or_encoder is not None else None
    if p is not None and p.is_file():
        if encoder != "trained":
            raise ValueError("encoder='random:SEED' needs a run folder (for its architecture)")
        return resolve_target(None, str(p), data_dir, benchmark)
    return resolve_target(p, None if encoder == "trained" else encoder, data_dir, benchmark)


def _features(**kw) -> FeatureOptions:
    kw.setdefault("progress", False)
    return FeatureOptions(**kw)


def _done(record: dict, path: Path) -> dict:
    return {**record, "path": str(path)}


def retrieval(run_or_encoder, data_dir=None, benchmark=None, ks=(1,), encoder="trained",
              temperature: float = 0.07, **feature_kw) -> dict:
    """k-NN retrieval; metrics `top1_k<k>` (and `top1` for k = 1)."""
    t = open_target(run_or_encoder, data_dir, benchmark, encoder)
    cfg = RetrievalConfig(ks=tuple(ks), temperature=temperature, features=_features(**feature_kw))
    return _done(*run_retrieval(t, cfg))


def linear(run_or_encoder, data_dir=None, benchmark=None, encoder="trained", epochs: int = 100,
           select_on: str = "val", lrs=LinearConfig.lrs, seed: int = 0, batch_size: int = 256,
           **feature_kw) -> dict:
    """Linear evaluation on frozen features; metrics `top1` (+ `val_top1`, `lr`, `epoch`)."""
    t = open_target(run_or_encoder, data_dir, benchmark, encoder)
    cfg = LinearConfig(epochs=epochs, select_on=select_on, lrs=tuple(lrs), seed=seed,
                       batch_size=batch_size, features=_features(**feature_kw))
    return _done(*run_linear(t, cfg))


def transfer(source_run, target_dir, benchmark=None, encoder="trained", epochs: int = 100,
             select_on: str = "val", **feature_kw) -> dict:
    """Linear evaluation of the source run's encoder (or of an encoder file: pass its path as
    source_run) on another dataset."""
    t = open_target(source_run, target_dir, benchmark, encoder)
    cfg = LinearConfig(epochs=epochs, select_on=select_on, features=_features(**feature_kw))
    return _done(*run_transfer(t, cfg))


def semi(run_or_encoder, data_dir=None, benchmark=None, ratio: float = 0.01, seeds: int = 3,
         encoder="trained", **train_kw) -> dict:
    """Semi-supervised fine-tuning; train_kw override FinetuneConfig.semi() fields
    (e.g. epochs=2, device="cpu")."""
    t = open_target(run_or_encoder, data_dir, benchmark, encoder)
    cfg = SemiConfig(ratio=ratio, seeds=seeds, train=FinetuneConfig.semi(**train_kw))
    return _done(*run_semi(t, cfg))


def finetune(run_or_encoder, data_dir=None, benchmark=None, encoder="trained", seed: int = 0,
             **train_kw) -> dict:
    """Full fine-tuning; train_kw override FinetuneConfig fields."""
    t = open_target(run_or_encoder, data_dir, benchmark, encoder)
    cfg = FullFinetuneConfig(seed=seed, train=dataclasses.replace(FinetuneConfig(), **train_kw))
    return _done(*run_full_finetune(t, cfg))
