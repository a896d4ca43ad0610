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
            click.option("--epochs", type=int, default=d.epochs, show_default=True),
            click.option("--batch-size", type=int, default=d.batch_size, show_default=True),
            click.option("--lr", type=float, default=d.lr, show_default=True, help="Backbone peak lr."),
            click.option("--head-lr", type=float, default=d.head_lr, show_default=True,
                         help="Head lr (default: --lr)."),
            click.option("--min-lr", type=float, default=d.min_lr, show_default=True),
            click.option("--warmup-epochs", type=int, default=d.warmup_epochs, show_default=True),
            click.option("--weight-decay", type=float, default=d.weight_decay, show_default=True),
            click.option("--layer-decay", type=float, default=d.layer_decay, show_default=True),
            click.option("--drop-path", type=float, default=d.drop_path, show_default=True),
            click.option("--label-smoothing", type=float, default=d.label_smoothing, show_default=True),
            click.option("--eval-every", type=int, default=d.eval_every, show_default=True,
                         help="Epochs between evaluations on the selection split."),
            click.option("--pool", type=click.Choice(["cls", "mean", "cls+mean"]), default=d.pool,
                         show_default=True),
            click.option("--workers", type=int, default=0, show_default=True),
            click.option("--device", default="auto", show_default=True),
        ]
        for o in reversed(opts):
            fn = o(fn)
        return fn
    return deco


def tune_config(defaults: FinetuneConfig, kw: dict) -> FinetuneConfig:
    return dataclasses.replace(
        defaults, epochs=kw["epochs"], batch_size=kw["batch_size"], lr=kw["lr"],
        head_lr=kw["head_lr"], min_lr=kw["min_lr"], warmup_epochs=kw["warmup_epochs"],
        weight_decay=kw["weight_decay"], layer_decay=kw["layer_decay"], drop_path=kw["drop_path"],
        label_smoothing=kw["label_smoothing"], eval_every=kw["eval_every"], pool=kw["pool"],
        num_workers=kw["workers"], device=kw["device"], select_on=kw["select_on"],
        val_fraction=kw["val_fraction"], val_seed=kw["val_seed"])
