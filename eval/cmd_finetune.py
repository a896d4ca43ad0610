"""`slim-eval finetune`: full fine-tuning (MAMP's protocol)."""
from __future__ import annotations

import click

from .cmd_tune_options import tune_config, tune_options
from .finetune import FinetuneConfig
from .options import open_target, run_protocol, selection_options, show_config, target_options


@click.command("finetune")
@click.option("--seed", type=int, default=0, show_default=True, help="Head init, order, drop-path.")
@tune_options(FinetuneConfig())
@selection_options
@target_options
def finetune(seed, run, encoder, data, benchmark, **kw):
    """Fine-tune the whole encoder + a linear head (AdamW, layer decay 0.8, drop-path 0.3,
    label smoothing 0.1, warmup 5, 100 epochs, batch 48)."""
    from .results import print_result
    from .tune import FullFinetuneConfig, run_full_finetune
    cfg = FullFinetuneConfig(seed=seed, train=tune_config(FinetuneConfig(), kw))
    target = open_target(run, encoder, data, benchmark)
    show_config(cfg)
    record, path = run_protocol(run_full_finetune, target, cfg)
    print_result(record, path)
