"""The linear protocol on frozen, cached features. Honest by default: lr (from a small
grid) and epoch are chosen on a stratified validation part of the training split, the
head is trained on the rest, and the test split is evaluated once. `select_on="test"`
is the papers' protocol: train on the whole training split, report the best test epoch."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .common import FeatureOptions, carve, is_main_process, pick_device, split_features
from .features import TRANSFORM, Features
from .probe import probe_accuracy, train_probe
from .results import result_path, write_result
from .saved_model import (classifier_path, protocol_key, reusable_record, save_target_classifier,
                          write_json_atomic)
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


def fit_linear(train: Features, test: Features, num_classes: int, cfg: LinearConfig,
               device: torch.device) -> tuple[dict, dict, torch.nn.Module]:
    """Probe on features; returns (metrics, split_sizes, head): head is the selected
    BatchNorm + Linear ([B, F] -> [B, C], CPU, eval mode). Test accuracy is measured once
    with the selected head under select_on="val"."""
    if cfg.select_on not in ("val", "test"):
        raise ValueError(f"select_on must be 'val' or 'test', got {cfg.select_on!r}")
    g = torch.Generator().manual_seed(cfg.seed)
    if cfg.select_on == "val":
        fit, val = carve(train.y, cfg.val_fraction, cfg.val_seed)
        res = train_probe(train.x[fit].to(device), train.y[fit], train.x[val].to(device),
                          train.y[val], num_classes, lrs=cfg.lrs, epochs=cfg.epochs,
                          batch_size=cfg.batch_size, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, generator=g)
        top1 = probe_accuracy(res.model, test.x, test.y)
        metrics = {"top1": top1, "val_top1": res.select_accuracy}
        sizes = {"train": len(fit), "val": len(val), "test": len(test.ids)}
    else:
        res = train_probe(train.x.to(device), train.y, test.x.to(device), test.y,
                          num_classes, lrs=cfg.lrs, epochs=cfg.epochs,
                          batch_size=cfg.batch_size, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, generator=g)
        metrics = {"top1": res.select_accuracy,
                   "top1_last_epoch": max(c[-1] for c in res.curves.values())}
        sizes = {"train": len(train.ids), "test": len(test.ids)}
    metrics.update({"lr": res.lr, "epoch": res.epoch})
    return metrics, sizes, res.model


def run_linear(target: EvalTarget, cfg: LinearConfig, *, protocol: str = "linear",
               variant: str = "", file_variant: str | None = None,
               extra: dict | None = None) -> tuple[dict, Path]:
    """Evaluate, write `<out>/eval/<protocol>[_<file_variant>][_random].json` (file_variant
    defaults to variant, the key of the paper's number) and the classifier beside it,
    `<protocol>[_<file_variant>][_random].classifier.pt` (saved_model.py); returns
    (record, path). A classifier already there for the same config (encoder, data,
    benchmark, protocol settings) is reused instead of trained again: the record is then
    its stored one, with `"reused": true`."""
    fv = variant if file_variant is None else file_variant
    path = result_path(target.out_dir, protocol, target.label, fv)
    key = protocol_key(target, protocol, fv, cfg)
    cpath = classifier_path(target.out_dir, protocol, target.label, fv)
    stored = reusable_record(cpath, key)
    if stored is not None:
        if not path.is_file() and is_main_process():
            write_json_atomic(path, stored)
        return {**stored, "reused": True}, path
    train = split_features(target, "train", cfg.features)
    test = split_features(target, "test", cfg.features)
    metrics, sizes, head = fit_linear(train, test, target.num_classes, cfg,
                                      pick_device(cfg.features.device))
    record = write_result(path, protocol=protocol, selection=cfg.select_on,
                          dataset=target.dataset, benchmark=target.benchmark,
                          split_sizes=sizes, metrics=metrics, config=cfg,
                          encoder=target.encoder_record(), variant=variant,
                          extra={"data": str(target.data_dir), "transform": TRANSFORM,
                                 "classifier": str(cpath), **(extra or {})})
    if is_main_process():
        save_target_classifier(cpath, target, head, "bn_linear", cfg.features.pool, protocol,
                               variant, record, key, frozen=True)
    return record, path
