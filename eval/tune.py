"""The two fine-tuning protocols on top of `finetune.finetune`: semi-supervised (the
manifest's class-balanced 1 % / 10 % subset, mean and std over training seeds) and full
fine-tuning (the whole training split)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from slim.ingest.clitools import console

from .common import is_main_process, pick_device
from .detail import merge_details
from .features import split_rows
from .finetune import FinetuneConfig, finetune
from .results import target_result_path, write_result
from .saved_model import classifier_path, protocol_key, save_target_classifier
from .split import check_classes, plan_selection, validation_groups
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


def _selection(target: EvalTarget, cfg: FinetuneConfig, train: tuple, pool: tuple, groups=None):
    """(selection, train_rows, select_rows, test_rows_or_None, sizes, carving record, cfg)
    for split.plan_selection over `pool` (the training rows a validation part may be
    carved from: the whole training split for full fine-tuning, the rows outside the
    labelled subset for semi). Under "val" the carved part is removed from `train` when
    pool is train; "test" selects on the test split; "last" (--val-fraction 0) trains on
    everything and evaluates the test split once, after the last epoch."""
    test = _rows(target, f"{target.benchmark}_test")
    check_classes(train[1], test[1], target.meta.get("class_names"), target.benchmark)
    selection, fit, val, carving = plan_selection(pool[1], cfg.select_on, cfg.val_fraction,
                                                  cfg.val_seed, groups)
    if selection == "val":
        if pool is train:
            train = (train[0][fit], train[1][fit])
        sel = (pool[0][val], pool[1][val])
        return selection, train, sel, test, {"train": len(train[0]), "val": len(val),
                                             "test": len(test[0])}, carving, cfg
    if selection == "last":
        cfg = replace(cfg, eval_every=cfg.epochs)      # one evaluation: after the last epoch
    return selection, train, test, None, {"train": len(train[0]), "test": len(test[0])}, carving, cfg


def _progress(seed, cfg: FinetuneConfig):
    if not cfg.progress:
        return None
    return lambda epoch, acc: console.print(f"[dim]seed {seed} epoch {epoch}: selection top-1 {acc:.2f}[/]")


def run_semi(target: EvalTarget, cfg: SemiConfig) -> tuple[dict, Path]:
    """Fine-tune on the labelled subset with `cfg.seeds` seeds; writes
    `<out>/eval/semi_<dataset>_<bench>_<1pct|10pct>_<pool>_sel-<s>[_<encoder>].json` with
    mean and std of top-1 (and a line of eval/results.jsonl)."""
    variant = RATIOS.get(cfg.ratio)
    if variant is None:
        raise ValueError(f"--ratio must be one of {sorted(RATIOS)}, got {cfg.ratio}")
    train_all = _rows(target, f"{target.benchmark}_train")
    subset = _rows(target, f"{target.benchmark}_train_{variant}")
    # Validation comes from the training split outside the labelled subset, so the
    # subset stays exactly the manifest's (and identical across seeds and runs).
    outside = ~np.isin(train_all[0], subset[0])
    pool = (train_all[0][outside], train_all[1][outside])
    selection, subset, sel, test, sizes, carving, train_cfg = _selection(target, cfg.train, subset, pool)
    carving["how"] += " (from the training split outside the labelled subset)" if selection == "val" else ""
    device = pick_device(cfg.train.device)
    runs = []
    best = None  # (selection top-1, seed, model): the seed whose classifier is saved
    for seed in range(cfg.seeds):
        r = finetune(target.encoder, target.data_dir, target.num_classes, subset, sel, test,
                     train_cfg, seed, device, _progress(seed, cfg.train), out_len=target.eval_len)
        model = r.pop("model")  # one model kept at a time, not one per seed
        # The saved classifier is the seed best on validation; with no validation part
        # (selection "test" / "last") it is seed 0, never one chosen on the test split.
        if best is None or (selection == "val" and r["select_top1"] > best[0]):
            best = (r["select_top1"], seed, model.cpu())
        del model
        runs.append(r)
    key = "test_top1" if selection == "val" else "select_top1"
    accs = [r[key] for r in runs]
    detail = merge_details([r["detail"] for r in runs])
    detail["class_names"] = list(target.meta.get("class_names") or [])
    metrics = {"top1": statistics.fmean(accs),
               "top1_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
               "top1_per_seed": accs, "epoch_per_seed": [r["epoch"] for r in runs],
               "steps": runs[0]["steps"], "top5": detail["top5"]}
    if selection == "val":
        metrics["val_top1_per_seed"] = [r["select_top1"] for r in runs]
    settings = {"pool": cfg.train.pool, "selection": selection}
    path = target_result_path(target, "semi", variant, settings)
    cpath = classifier_path(target.out_dir, "semi", target.label, variant)
    record = write_result(path, protocol="semi", selection=selection, settings=settings,
                          dataset=target.dataset, benchmark=target.benchmark, split_sizes=sizes,
                          metrics=metrics, config=cfg, encoder=target.encoder_record(),
                          variant=variant,
                          extra={"data": str(target.data_dir), "detail": detail,
                                 "validation": carving,
                                 "classifier": str(cpath), "classifier_seed": best[1]})
    _save(cpath, target, best[2], cfg.train, "semi", variant, record, cfg)
    return record, path


def run_full_finetune(target: EvalTarget, cfg: FullFinetuneConfig) -> tuple[dict, Path]:
    """Fine-tune on the whole training split (minus the carved validation part under
    select_on val); writes `<out>/eval/finetune_<dataset>_<bench>_<pool>_sel-<s>[_<encoder>].json`."""
    train_all = _rows(target, f"{target.benchmark}_train")
    groups = validation_groups(target.data_dir, target.benchmark, train_all[0])
    selection, train, sel, test, sizes, carving, train_cfg = _selection(
        target, cfg.train, train_all, train_all, groups)
    r = finetune(target.encoder, target.data_dir, target.num_classes, train, sel, test,
                 train_cfg, cfg.seed, pick_device(cfg.train.device), _progress(cfg.seed, cfg.train),
                 out_len=target.eval_len)
    metrics = {"top1": r["test_top1"] if selection == "val" else r["select_top1"],
               "epoch": r["epoch"], "steps": r["steps"], "top5": r["detail"]["top5"]}
    detail = {**r["detail"], "class_names": list(target.meta.get("class_names") or [])}
    if selection == "val":
        metrics["val_top1"] = r["select_top1"]
    settings = {"pool": cfg.train.pool, "selection": selection}
    path = target_result_path(target, "finetune", settings=settings)
    cpath = classifier_path(target.out_dir, "finetune", target.label)
    record = write_result(path, protocol="finetune", selection=selection, settings=settings,
                          dataset=target.dataset, benchmark=target.benchmark, split_sizes=sizes,
                          metrics=metrics, config=cfg, encoder=target.encoder_record(),
                          extra={"data": str(target.data_dir), "curve": r["curve"], "detail": detail,
                                 "validation": carving, "classifier": str(cpath)})
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
