"""Click options shared by `slim-eval semi` and `slim-eval finetune` (the fine-tuning
recipe); defaults come from the command's config so the help shows the protocol."""
from __future__ import annotations

import dataclasses

import click

from .finetune import FinetuneConfig


def tune_options(defaults: FinetuneConfig):
    d = defaults

    def deco(fn):
        opts = [
            click.option("--epochs", type=click.IntRange(min=1), default=d.epochs, show_default=True,
                         help="Training epochs (each ends with an evaluation on the selection split "
                              "every --eval-every epochs)."),
            click.option("--min-steps", type=click.IntRange(min=0), default=d.min_steps, show_default=True,
                         help="Train for at least this many optimiser steps: each epoch repeats "
                              "the labelled rows (shuffled anew) as often as needed. 0 = one pass "
                              "per epoch."),
            click.option("--batch-size", type=click.IntRange(min=1), default=d.batch_size,
                         show_default=True, help="Training samples per optimiser step."),
            click.option("--lr", type=float, default=d.lr, show_default=True, help="Backbone peak lr."),
            click.option("--head-lr", type=float, default=d.head_lr, show_default=True,
                         help="Head lr (default: --lr)."),
            click.option("--min-lr", type=float, default=d.min_lr, show_default=True,
                         help="Floor of the cosine lr schedule (backbone; other groups scale with it)."),
            click.option("--warmup-epochs", type=click.IntRange(min=0), default=d.warmup_epochs,
                         show_default=True, help="Epochs of linear lr warmup."),
            click.option("--weight-decay", type=float, default=d.weight_decay, show_default=True,
                         help="Weight decay (not on biases, norms and learned tokens)."),
            click.option("--layer-decay", type=float, default=d.layer_decay, show_default=True,
                         help="Layer-wise lr decay: layer l gets lr x decay^(L-1-l); 1.0 = none."),
            click.option("--drop-path", type=float, default=d.drop_path, show_default=True,
                         help="Stochastic depth rate of the encoder blocks."),
            click.option("--label-smoothing", type=float, default=d.label_smoothing, show_default=True,
                         help="Label smoothing of the cross-entropy loss."),
            click.option("--eval-every", type=click.IntRange(min=1), default=d.eval_every, show_default=True,
                         help="Epochs between evaluations on the selection split."),
            click.option("--pool", type=click.Choice(["cls", "mean", "cls+mean"]), default=d.pool,
                         show_default=True, help="Feature fed to the head: class token, mean patch "
                                                 "token, or both concatenated."),
            click.option("--workers", type=int, default=0, show_default=True, help="DataLoader workers."),
            click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N."),
            click.option("--no-progress", is_flag=True, help="Do not print the selection accuracy "
                                                             "after each evaluation."),
        ]
        for o in reversed(opts):
            fn = o(fn)
        return fn
    return deco


def tune_config(defaults: FinetuneConfig, kw: dict) -> FinetuneConfig:
    """The command's FinetuneConfig from the click keywords (device checked first)."""
    from .options import check_device
    check_device(kw["device"])
    return dataclasses.replace(
        defaults, epochs=kw["epochs"], batch_size=kw["batch_size"], lr=kw["lr"],
        head_lr=kw["head_lr"], min_lr=kw["min_lr"], warmup_epochs=kw["warmup_epochs"],
        weight_decay=kw["weight_decay"], layer_decay=kw["layer_decay"], drop_path=kw["drop_path"],
        label_smoothing=kw["label_smoothing"], eval_every=kw["eval_every"], pool=kw["pool"],
        num_workers=kw["workers"], device=kw["device"], select_on=kw["select_on"],
        val_fraction=kw["val_fraction"], val_seed=kw["val_seed"], min_steps=kw["min_steps"],
        progress=not kw["no_progress"])
