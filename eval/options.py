"""Click options every `slim-eval` protocol shares (what to evaluate, on which data, how
features are made) and the glue that turns them into an EvalTarget with readable
errors."""
from __future__ import annotations

import functools
import os
from dataclasses import asdict

import click

from slim.ingest.clitools import console, err_console, fail

from .common import FeatureOptions, is_main_process
from .target import EvalTarget, TargetError, resolve_target


def target_options(fn):
    """--run, --encoder, --data, --benchmark."""
    opts = [
        click.option("--run", "run", type=click.Path(file_okay=False), default=None,
                     help="Run folder (default: the latest under runs/); its exported "
                          "teacher encoder.pt is used, exported first if missing."),
        click.option("--encoder", "encoder", default=None, metavar="FILE|random[:SEED]",
                     help="An encoder file instead of the run's, or `random:SEED`: a randomly "
                          "initialised encoder of the run's architecture (the baseline)."),
        click.option("--data", "data", type=click.Path(file_okay=False), default=None,
                     help="Ingested data folder (default: the run's dataset from run.json)."),
        click.option("--benchmark", default=None, help="xsub, xview, xset (default: the run's)."),
    ]
    return functools.reduce(lambda f, o: o(f), reversed(opts), fn)


def feature_options(fn):
    """--pool, --feature-batch, --workers, --device, --no-cache, --no-progress."""
    opts = [
        click.option("--pool", type=click.Choice(["cls", "mean", "cls+mean"]), default="cls+mean",
                     show_default=True, help="Feature: class token, mean patch token, or both."),
        click.option("--feature-batch", type=int, default=256, show_default=True,
                     help="Samples per encoder batch when extracting features."),
        click.option("--workers", type=int, default=0, show_default=True, help="DataLoader workers."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N."),
        click.option("--no-cache", is_flag=True, help="Do not read or write <run>/eval/cache/."),
        click.option("--no-progress", is_flag=True, help="No progress bar."),
    ]
    return functools.reduce(lambda f, o: o(f), reversed(opts), fn)


def selection_options(fn):
    """--select-on, --val-fraction, --val-seed."""
    opts = [
        click.option("--select-on", type=click.Choice(["val", "test"]), default="val",
                     show_default=True,
                     help="val: choose epoch / hyper-parameters on a validation part of the "
                          "training split (honest); test: the papers' protocol (best test epoch)."),
        click.option("--val-fraction", type=float, default=0.1, show_default=True,
                     help="Share of the training split carved out for validation (X-Sub: whole "
                          "performers, none on both sides; other benchmarks: stratified by class). "
                          "0: no validation part; the last epoch is reported (selection \"last\")."),
        click.option("--val-seed", type=int, default=0, show_default=True,
                     help="Seed of the validation carving."),
    ]
    return functools.reduce(lambda f, o: o(f), reversed(opts), fn)


def feature_config(kw: dict) -> FeatureOptions:
    """FeatureOptions from the click keywords (the device is checked first: a clean
    error for `--device gpu` or `--device cuda` without CUDA)."""
    check_device(kw["device"])
    return FeatureOptions(pool=kw["pool"], batch_size=kw["feature_batch"],
                          num_workers=kw["workers"], device=kw["device"],
                          cache=not kw["no_cache"], progress=not kw["no_progress"])


def check_device(name: str) -> None:
    """`fail` with a hint unless `name` is a device this machine has (common.pick_device)."""
    from .common import pick_device
    try:
        pick_device(name)
    except TargetError as e:
        fail(str(e), e.hint)


def join_torchrun() -> None:
    """Under torchrun (WORLD_SIZE > 1) join the process group, so that feature extraction
    splits the samples over ranks and gathers them by index; otherwise nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from slim.train.distributed import setup
        setup("auto")


def rename_options(text: str | None, names: dict[str, str] | None) -> str | None:
    """Rewrite option names in a message for a command that spells them differently
    (transfer: --run -> --source, --data -> --target)."""
    import re
    if not text or not names:
        return text
    return re.sub(r"--(run|data|encoder|benchmark)\b",
                  lambda m: names.get(m.group(0), m.group(0)), text)


def open_target(run, encoder, data, benchmark, names: dict[str, str] | None = None) -> EvalTarget:
    """resolve_target with errors turned into `fail(message, hint)`; prints what was
    picked by default. names: this command's spelling of the shared options, e.g.
    {"--run": "--source", "--data": "--target"}, so that hints name options it has."""
    join_torchrun()
    try:
        t = resolve_target(run, encoder, data, benchmark,
                           announce=lambda s: say(f"[dim]{rename_options(s, names)}[/]"))
    except TargetError as e:
        fail(rename_options(str(e), names), rename_options(e.hint, names))
    say(f"[dim]encoder: {t.label} ({t.encoder_path or 'random init'}, sha256 "
                  f"{t.sha256[:12]}) · data: {t.data_dir} ({t.dataset} {t.benchmark})[/]")
    warn = t.unfinished_warning()
    if warn and is_main_process():
        err_console.print(f"[bold yellow]warning:[/] {warn}")
    return t


def show_config(cfg) -> None:
    say(f"[dim]config: {asdict(cfg)}[/]")


def say(text: str) -> None:
    """Print once (rank 0 under torchrun); long lines (paths, configs) are not broken
    into the console's width, so a log keeps each on one line."""
    if is_main_process():
        console.print(text, soft_wrap=True)


def run_protocol(fn, *args, **kwargs):
    """Call a protocol; data problems (a missing split column, a bad sample, mismatched
    layouts) become a readable error instead of a traceback."""
    try:
        return fn(*args, **kwargs)
    except TargetError as e:
        fail(str(e), e.hint)
    except (FileNotFoundError, KeyError) as e:
        fail(str(e), getattr(e, "hint", None)
             or "check --data / --benchmark, or re-ingest the dataset with slim-ingest")
    except ValueError as e:
        fail(str(e), getattr(e, "hint", None)
             or "check the values of the options you gave (`--help` lists them and their ranges)")
