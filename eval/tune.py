"""The two fine-tuning protocols on top of `finetune.finetune`: semi-supervised (the
manifest's class-balanced 1 % / 10 % subset, mean and std over training seeds) and full
fine-tuning (the whole training split)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slim.ingest.clitools import console

from .common import carve, is_main_process, pick_device
from .features import split_rows
from .finetune import FinetuneConfig, finetune
from .results import result_path, write_result
from .saved_model import classifier_path, protocol_key, save_target_classifier
from .target import EvalTarget

RATIOS = {0.01: "1pct", 0.1: "10pct"}


@dataclass(frozen=True)
class SemiConfig:
    ratio: float = 0.01           # 0.01 | 0.1: the manifest subset <bench>_train_<1pct|10pct>
    seeds: int = 3                # training seeds 0..seeds-1 (the subset itself is fixed)
    train: FinetuneConfig = field(default_factory=FinetuneConfig.semi)


@dataclass(frozen=True)
class FullFinetuneConfig:
    seed: int = 0
    train: FinetuneConfig = field(default_factory=FinetuneConfig)


def _rows(target: EvalTarget, column: str) -> tuple[np.ndarray, np.ndarray]:
    index, label, _ids = split_rows(target.data_dir, column)
    return index, label


def _selection(target: EvalTarget, cfg: FinetuneConfig, train: tuple, pool: tuple):
    """(select_rows, test_rows_or_None, sizes) for select_on val (val carved from `pool`,
    the labelled-or-not training rows the model does not train on) or test."""
    test = _rows(target, f"{target.benchmark}_test")
    if cfg.select_on == "test":
        return test, None, {"train": len(train[0]), "test": len(test[0])}
    if cfg.select_on != "val":
        raise ValueError(f"select_on must be 'val' or 'test', got {cfg.select_on!r}")
    _fit, val = carve(pool[1], cfg.val_fraction, cfg.val_seed)
    sel = (pool[0][val], pool[1][val])
    return sel, test, {"train": len(train[0]), "val": len(val), "test": len(test[0])}


def _progress(seed):
    return lambda epoch, acc: console.print(f"[dim]seed {seed} epoch {epoch}: selection top-1 {acc:.2f}[/]")


def run_semi(target: EvalTarget, cfg: SemiConfig) -> tuple[dict, Path]:
    """Fine-tune on the labelled subset with `cfg.seeds` seeds; writes
    `<out>/eval/semi_<1pct|10pct>[_random].json` with mean and std of top-1."""
    variant = RATIOS.get(cfg.ratio)
    if variant is None:
        raise ValueError(f"--ratio must be one of {sorted(RATIOS)}, got {cfg.ratio}")
    train_all = _rows(target, f"{target.benchmark}_train")
    subset = _rows(target, f"{target.benchmark}_train_{variant}")
    # Validation comes from the training split outside the labelled subset, so the
    # subset stays exactly the manifest's (and identical across seeds and runs).
    outside = ~np.isin(train_all[0], subset[0])
    pool = (train_all[0][outside], train_all[1][outside])
    sel, test, sizes = _selection(target, cfg.train, subset, pool)
    device = pick_device(cfg.train.device)
    runs = []
    best = None  # (selection top-1, seed, model): the seed whose classifier is saved
    for seed in range(cfg.seeds):
        r = finetune(target.encoder, target.data_dir, target.num_classes, subset, sel, test,
                     cfg.train, seed, device, _progress(seed))
        model = r.pop("model")  # one model kept at a time, not one per seed
        if best is None or r["select_top1"] > best[0]:
            best = (r["select_top1"], seed, model.cpu())
        del model
        runs.append(r)
    key = "test_top1" if cfg.train.select_on == "val" else "select_top1"
    accs = [r[key] for r in runs]
    metrics = {"top1": statistics.fmean(accs),
               "top1_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
               "top1_per_seed": accs, "epoch_per_seed": [r["epoch"] for r in runs]}
    if cfg.train.select_on == "val":
        metrics["val_top1_per_seed"] = [r["select_top1"] for r in runs]
    path = result_path(target.out_dir, "semi", target.label, variant)
    cpath = classifier_path(target.out_dir, "semi", target.label, variant)
    record = write_result(path, protocol="semi", selection=cfg.train.select_on,
                          dataset=target.dataset, benchmark=target.benchmark, split_sizes=sizes,
                          metrics=metrics, config=cfg, encoder=target.encoder_record(),
                          variant=variant,
                          extra={"data": str(target.data_dir),
                                 "val_source": "training split outside the labelled subset",
                                 "classifier": str(cpath), "classifier_seed": best[1]})
    _save(cpath, target, best[2], cfg.train, "semi", variant, record, cfg)
    return record, path


def run_full_finetune(target: EvalTarget, cfg: FullFinetuneConfig) -> tuple[dict, Path]:
    """Fine-tune on the whole training split (minus the carved validation part under
    select_on val); writes `<out>/eval/finetune[_random].json`."""
    train_all = _rows(target, f"{target.benchmark}_train")
    if cfg.train.select_on == "val":
        fit, val = carve(train_all[1], cfg.train.val_fraction, cfg.train.val_seed)
        train = (train_all[0][fit], train_all[1][fit])
        sel = (train_all[0][val], train_all[1][val])
        test = _rows(target, f"{target.benchmark}_test")
        sizes = {"train": len(fit), "val": len(val), "test": len(test[0])}
    else:
        train = train_all
        sel, test, sizes = _selection(target, cfg.train, train, train)
    r = finetune(target.encoder, target.data_dir, target.num_classes, train, sel, test,
                 cfg.train, cfg.seed, pick_device(cfg.train.device), _progress(cfg.seed))
    metrics = {"top1": r["test_top1"] if cfg.train.select_on == "val" else r["select_top1"],
               "epoch": r["epoch"]}
    if cfg.train.select_on == "val":
        metrics["val_top1"] = r["select_top1"]
    path = result_path(target.out_dir, "finetune", target.label)
    cpath = classifier_path(target.out_dir, "finetune", target.label)
    record = write_result(path, protocol="finetune", selection=cfg.train.select_on,
                          dataset=target.dataset, benchmark=target.benchmark, split_sizes=sizes,
                          metrics=metrics, config=cfg, encoder=target.encoder_record(),
                          extra={"data": str(target.data_dir), "curve": r["curve"],
                                 "classifier": str(cpath)})
    _save(cpath, target, r["model"].cpu(), cfg.train, "finetune", "", record, cfg)
    return record, path


def _save(path: Path, target: EvalTarget, model, train: FinetuneConfig, protocol: str,
          variant: str, record: dict, cfg) -> None:
    """The fine-tuned encoder (embedded) + head as `<out>/eval/<protocol>[_<variant>]
    [_random].classifier.pt` (rank 0 only)."""
    if not is_main_process():
        return
    model.encoder.set_drop_path(0.0)  # inference only: no stochastic depth in the saved config
    save_target_classifier(path, target, model.head, "linear", train.pool, protocol, variant,
                           record, protocol_key(target, protocol, variant, cfg), frozen=False,
                           encoder=model.encoder)
