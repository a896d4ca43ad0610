"""The linear protocol on frozen, cached features. Honest by default: lr (from a small
grid) and epoch are chosen on a stratified validation part of the training split, the
head is trained on the rest, and the test split is evaluated once. `select_on="test"`
is the papers' protocol: train on the whole training split, report the best test epoch."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .common import FeatureOptions, is_main_process, pick_device, split_features
from .detail import class_detail
from .features import Features, transform_desc
from .probe import probe_accuracy, train_probe
from .results import target_result_path, write_result
from .saved_model import (classifier_path, protocol_key, reusable_record, save_target_classifier,
                          write_json_atomic)
from .split import SelectionError, check_classes, plan_selection, validation_groups
from .target import EvalTarget


@dataclass(frozen=True)
class LinearConfig:
    epochs: int = 100
    batch_size: int = 256
    lrs: tuple[float, ...] = (0.03, 0.1, 0.3)   # base lr grid; x batch/256; paper: 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    select_on: str = "val"        # val (honest) | test (papers' protocol)
    val_fraction: float = 0.1     # of the training split, stratified
    val_seed: int = 0             # carving seed
    seed: int = 0                 # owns the probe's init and shuffling
    features: FeatureOptions = FeatureOptions()


#: The paper's linear-probe learning rate: the one used when there is nothing to choose
#: the grid's best on (selection "last").
PAPER_LR = 0.1


def fit_linear(train: Features, test: Features, num_classes: int, cfg: LinearConfig,
               device: torch.device, groups=None, class_names: list[str] | None = None
               ) -> tuple[dict, dict, str, dict, torch.nn.Module, dict]:
    """Probe on features; returns (metrics, split_sizes, selection, carving record, head,
    detail). selection (split.plan_selection): "val" = lr and epoch chosen on a validation
    part (grouped by performer when `groups` = (name, per-sample groups [N]) is given),
    test measured once; "test" = best test epoch (papers' protocol); "last" =
    --val-fraction 0: all training samples, the last epoch, one lr (the paper's 0.1 for
    the default grid). head is the selected BatchNorm + Linear ([B, F] -> [B, C], CPU,
    eval mode); detail (detail.class_detail: top-5, per-class accuracy, confusion) is of
    that head on the test split. Raises SelectionError (empty validation part, several
    --lr with nothing to choose on)."""
    selection, fit, val, record = plan_selection(train.y.numpy(), cfg.select_on, cfg.val_fraction,
                                                 cfg.val_seed, groups)
    g = torch.Generator().manual_seed(cfg.seed)
    kw = dict(epochs=cfg.epochs, batch_size=cfg.batch_size, momentum=cfg.momentum,
              weight_decay=cfg.weight_decay, generator=g)
    if selection == "val":
        res = train_probe(train.x[fit].to(device), train.y[fit], train.x[val].to(device),
                          train.y[val], num_classes, lrs=cfg.lrs, **kw)
        top1 = probe_accuracy(res.model, test.x, test.y)
        metrics = {"top1": top1, "val_top1": res.select_accuracy}
        sizes = {"train": len(fit), "val": len(val), "test": len(test.ids)}
    elif selection == "last":
        lrs = (PAPER_LR,) if tuple(cfg.lrs) == LinearConfig.lrs else tuple(cfg.lrs)
        if len(lrs) != 1:
            raise SelectionError(f"--val-fraction 0 leaves nothing to choose among {len(lrs)} "
                                 "learning rates on", "pass one --lr (the paper's is 0.1), or a "
                                 "--val-fraction above 0")
        res = train_probe(train.x.to(device), train.y, test.x.to(device), test.y, num_classes,
                          lrs=lrs, keep_last=True, **kw)
        metrics = {"top1": res.curves[lrs[0]][-1]}
        record["lr"] = f"{lrs[0]} (fixed; the paper's)" if lrs[0] == PAPER_LR else f"{lrs[0]} (fixed)"
        sizes = {"train": len(train.ids), "test": len(test.ids)}
    else:
        res = train_probe(train.x.to(device), train.y, test.x.to(device), test.y,
                          num_classes, lrs=cfg.lrs, **kw)
        metrics = {"top1": res.select_accuracy,
                   "top1_last_epoch": max(c[-1] for c in res.curves.values())}
        sizes = {"train": len(train.ids), "test": len(test.ids)}
    metrics.update({"lr": res.lr, "epoch": res.epoch})
    with torch.no_grad():
        logits = res.model.eval()(test.x.float().cpu())
    detail = class_detail(logits, test.y, num_classes, class_names)
    metrics["top5"] = detail["top5"]
    return metrics, sizes, selection, record, res.model, detail


def run_linear(target: EvalTarget, cfg: LinearConfig, *, protocol: str = "linear",
               variant: str = "", file_variant: str | None = None,
               extra: dict | None = None) -> tuple[dict, Path]:
    """Evaluate, write `<out>/eval/<protocol>_<dataset>_<bench>[_<file_variant>]_<pool>_sel-<s>
    [_<encoder>].json` (file_variant defaults to variant, the key of the paper's number),
    a line of eval/results.jsonl, and the classifier `<protocol>[_<file_variant>][_random]
    .classifier.pt` (saved_model.py); returns (record, path). A classifier already there
    for the same config (encoder, data, benchmark, protocol settings) is reused instead of
    trained again: the record is then its stored one, with `"reused": true`."""
    fv = variant if file_variant is None else file_variant
    selection = "last" if cfg.select_on == "val" and cfg.val_fraction == 0 else cfg.select_on
    settings = {"pool": cfg.features.pool, "selection": selection}
    path = target_result_path(target, protocol, fv, settings)
    key = protocol_key(target, protocol, fv, cfg)
    cpath = classifier_path(target.out_dir, protocol, target.label, fv)
    stored = reusable_record(cpath, key)
    if stored is not None:
        if not path.is_file() and is_main_process():
            write_json_atomic(path, stored)
        return {**stored, "reused": True}, path
    train = split_features(target, "train", cfg.features)
    test = split_features(target, "test", cfg.features)
    check_classes(train.y.numpy(), test.y.numpy(), target.meta.get("class_names"), target.benchmark)
    groups = validation_groups(target.data_dir, target.benchmark, train.index)
    metrics, sizes, selection, carving, head, detail = fit_linear(
        train, test, target.num_classes, cfg, pick_device(cfg.features.device), groups,
        list(target.meta.get("class_names") or []))
    record = write_result(path, protocol=protocol, selection=selection, settings=settings,
                          dataset=target.dataset, benchmark=target.benchmark,
                          split_sizes=sizes, metrics=metrics, config=cfg,
                          encoder=target.encoder_record(), variant=variant,
                          extra={"data": str(target.data_dir), "transform": transform_desc(target.eval_len),
                                 "eval_len": target.eval_len,
                                 "validation": carving, "detail": detail, "classifier": str(cpath),
                                 **(extra or {})})
    if is_main_process():
        save_target_classifier(cpath, target, head, "bn_linear", cfg.features.pool, protocol,
                               variant, record, key, frozen=True)
    return record, path
