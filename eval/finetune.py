"""Fine-tuning an encoder + linear head end to end: the semi-supervised protocol (SGD,
separate head / backbone lr, on the manifest's few-label subset) and full fine-tuning
(AdamW, layer decay, drop-path, label smoothing; MAMP's recipe). Honest by default: the
epoch is chosen on a validation part of the training split (outside the labelled
subset) and the test split is evaluated once, with the chosen weights."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from slim.model.encoder import Encoder, encode_sample

from .detail import class_detail
from .views_data import indexed_loader


@dataclass(frozen=True)
class FinetuneConfig:
    optimizer: str = "adamw"      # adamw (full fine-tuning) | sgd (semi-supervised)
    epochs: int = 100
    batch_size: int = 48
    lr: float = 3e-4              # backbone peak lr (adamw: before layer decay)
    head_lr: float | None = None  # None: same as lr
    min_lr: float = 1e-5          # cosine floor of the backbone lr (groups scale with it)
    warmup_epochs: int = 5
    weight_decay: float = 0.05
    momentum: float = 0.9         # sgd only
    layer_decay: float = 0.8      # 1.0 = none
    drop_path: float = 0.3
    label_smoothing: float = 0.1
    pool: str = "cls+mean"
    select_on: str = "val"        # val | test
    val_fraction: float = 0.1
    val_seed: int = 0
    eval_every: int = 1           # epochs between selection evaluations (and the last)
    eval_batch: int = 256
    num_workers: int = 0
    device: str = "auto"
    min_steps: int = 0            # at least this many optimiser steps in all (see passes_per_epoch)
    progress: bool = True         # print the selection accuracy after each evaluation

    @classmethod
    def semi(cls, **overrides) -> "FinetuneConfig":
        """PROTOCOLS.md semi-supervised recipe: SGD momentum 0.9, wd 1e-4, head lr 1e-3,
        backbone lr 1e-5, cosine (to 0), no warmup / layer decay / drop-path / smoothing."""
        return cls(**{"optimizer": "sgd", "lr": 1e-5, "head_lr": 1e-3, "min_lr": 0.0,
                      "warmup_epochs": 0, "weight_decay": 1e-4, "layer_decay": 1.0,
                      "drop_path": 0.0, "label_smoothing": 0.0, "batch_size": 64,
                      "min_steps": SEMI_MIN_STEPS, **overrides})


# The paper's smallest few-label run (NTU-60 X-Sub 1 %: 400 labelled samples, batch 64,
# 100 epochs) takes 7 x 100 = 700 optimiser steps; a smaller subset must not take fewer.
SEMI_MIN_STEPS = 700


def passes_per_epoch(num_samples: int, batch_size: int, epochs: int, min_steps: int) -> tuple[int, int]:
    """The few-label step rule: (passes over the training rows per epoch, steps per pass).

    One pass is ceil(N / batch) steps (N / batch, rounded down, when N > batch: the last
    partial batch is dropped). An epoch makes as many shuffled passes as it takes for
    epochs x passes x steps_per_pass >= min_steps, so a tiny labelled subset trains for
    as many steps as the paper's smallest setting instead of one step per epoch.
    Raises ValueError when there is nothing to train on."""
    if num_samples < 1 or batch_size < 1 or epochs < 1:
        raise ValueError(f"cannot fine-tune on {num_samples} samples, batch {batch_size}, {epochs} epochs")
    per_pass = num_samples // batch_size if num_samples > batch_size else 1
    passes = max(1, -(-max(0, min_steps) // (epochs * per_pass)))
    return passes, per_pass



class Classifier(nn.Module):
    """encode_sample (both persons, pooled) + linear head."""

    def __init__(self, encoder: Encoder, num_classes: int, pool: str):
        super().__init__()
        self.encoder, self.pool = encoder, pool
        dim = encoder.cfg.dim * (2 if pool == "cls+mean" else 1)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=2e-5)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, person_mask: torch.Tensor) -> torch.Tensor:
        """x [B, M, T, V, C], person_mask bool [B, M] -> logits [B, num_classes]."""
        return self.head(encode_sample(self.encoder, x, person_mask, self.pool))


def param_groups(model: Classifier, cfg: FinetuneConfig) -> list[dict]:
    """Layer-wise lr decay (scale decay ** (L - 1 - layer_id), head scale 1) and no weight
    decay on biases, norms and learned tokens (1-d parameters)."""
    enc = model.encoder
    n = enc.num_layer_ids
    groups: dict[tuple, dict] = {}
    named = [(f"encoder.{k}", p, cfg.lr * cfg.layer_decay ** (n - 1 - enc.layer_id(k)))
             for k, p in enc.named_parameters()]
    named += [(f"head.{k}", p, cfg.head_lr if cfg.head_lr is not None else cfg.lr)
              for k, p in model.head.named_parameters()]
    for name, p, lr in named:
        if not p.requires_grad:
            continue
        no_wd = p.ndim <= 1 or any(t in name for t in ("token", "joint_embed", "temporal_embed"))
        wd = 0.0 if no_wd else cfg.weight_decay
        key = (lr, wd)
        groups.setdefault(key, {"params": [], "peak_lr": lr, "weight_decay": wd})["params"].append(p)
    return list(groups.values())


def lr_factor(step: int, total: int, warmup: int, peak: float, floor: float) -> float:
    """Linear warmup over `warmup` steps to `peak`, then cosine to `floor` (absolute lrs)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * t))


@torch.no_grad()
def predict(model: Classifier, loader, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits float32 [N, C] on CPU, labels int64 [N]) of model over a loader of eval
    batches (views_data), in loader order."""
    model.eval()
    logits, labels = [], []
    for b in loader:
        logits.append(model(b["x"].to(device), b["person_mask"].to(device)).float().cpu())
        labels.append(b["label"].long())
    if not logits:
        return torch.zeros(0, model.head.out_features), torch.zeros(0, dtype=torch.int64)
    return torch.cat(logits), torch.cat(labels)


def evaluate(model: Classifier, loader, device) -> float:
    """Top-1 accuracy % of model over a loader of eval batches (views_data)."""
    logits, y = predict(model, loader, device)
    return 100.0 * float((logits.argmax(-1) == y).sum()) / max(1, len(y))


def finetune(encoder: Encoder, data_dir, num_classes: int, train_rows: tuple[np.ndarray, np.ndarray],
             select_rows: tuple[np.ndarray, np.ndarray], test_rows: tuple[np.ndarray, np.ndarray] | None,
             cfg: FinetuneConfig, seed: int, device: torch.device, progress=None,
             out_len: int | None = None) -> dict:
    """Train a copy of `encoder` + head on train_rows = (hdf5 indices [N], labels [N]);
    evaluate on select_rows every `eval_every` epochs and keep the best weights; then
    evaluate test_rows once with them (None when selection is on the test split itself).
    out_len: frames of the test view (the encoder's trained length, EvalTarget.eval_len;
    None: the pipeline's default, 64).
    `seed` owns the head init, the data order and drop-path (the default generator is
    forked, so the caller's global RNG state is untouched).
    Each epoch makes `passes_per_epoch(...)` passes over train_rows (at least
    cfg.min_steps steps in all). Returns {"select_top1", "epoch", "test_top1" (or None),
    "curve": [select acc...], "steps": optimiser steps taken, "detail": top-5, per-class
    accuracy and confusion of the selected weights on the test rows (on the selection
    rows when test_rows is None; detail.class_detail), "model": the Classifier with the
    selected weights, eval mode}."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # drop-path and head init draw from the default generator
        enc = copy.deepcopy(encoder)
        enc.set_drop_path(cfg.drop_path)
        model = Classifier(enc, num_classes, cfg.pool).to(device)
        g = torch.Generator().manual_seed(seed)
        train = indexed_loader(data_dir, train_rows[0], cfg.batch_size, shuffle=True, generator=g,
                               num_workers=cfg.num_workers, drop_last=len(train_rows[0]) > cfg.batch_size,
                               out_len=out_len)
        sel = indexed_loader(data_dir, select_rows[0], cfg.eval_batch, shuffle=False,
                             num_workers=cfg.num_workers, out_len=out_len)
        groups = param_groups(model, cfg)
        if cfg.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=0.0, momentum=cfg.momentum)
        elif cfg.optimizer == "adamw":
            opt = torch.optim.AdamW(groups, lr=0.0, betas=(0.9, 0.999))
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {cfg.optimizer!r}")
        loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        passes, _ = passes_per_epoch(len(train_rows[0]), cfg.batch_size, cfg.epochs, cfg.min_steps)
        per_epoch = passes * len(train)
        total, warm = cfg.epochs * per_epoch, cfg.warmup_epochs * per_epoch
        best = (-1.0, 0, None)
        curve = []
        step = 0
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            for b in (b for _ in range(passes) for b in train):
                for grp in opt.param_groups:
                    # Each group keeps its own peak; the floor scales with it (layer decay).
                    floor = cfg.min_lr * grp["peak_lr"] / cfg.lr if cfg.lr else 0.0
                    grp["lr"] = lr_factor(step, total, warm, grp["peak_lr"], floor)
                logits = model(b["x"].to(device), b["person_mask"].to(device))
                loss = loss_fn(logits, b["label"].to(device))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"fine-tuning loss is {loss.item()} at epoch {epoch}: "
                                             "lower --lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                acc = evaluate(model, sel, device)
                curve.append(acc)
                if acc > best[0]:
                    best = (acc, epoch, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
                if progress:
                    progress(epoch, acc)
        acc, epoch, state = best
        model.load_state_dict(state)
        model.eval()
        test_top1 = None
        final = indexed_loader(data_dir, (test_rows if test_rows is not None else select_rows)[0],
                               cfg.eval_batch, shuffle=False, num_workers=cfg.num_workers, out_len=out_len)
        logits, y = predict(model, final, device)
        if test_rows is not None:
            test_top1 = 100.0 * float((logits.argmax(-1) == y).sum()) / max(1, len(y))
        detail = class_detail(logits, y, num_classes)
    return {"select_top1": acc, "epoch": epoch, "test_top1": test_top1, "curve": curve, "steps": step,
            "detail": detail, "model": model}
