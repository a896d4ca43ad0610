"""`slim-train pretrain`: resolve the config, find the dataset and the run folder, and run
(or resume) the pretraining loop."""
from __future__ import annotations

import os
from pathlib import Path

import click

PRESET_CHOICES = ("auto", "paper", "cpu-demo", "cpu-real", "cpu-smoke")


def _pick_dataset(data: str | None) -> Path:
    from slim.ingest.clitools import fail

    from .runs import list_datasets
    if data:
        p = Path(data)
        if not (p / "samples.h5").is_file() or not (p / "manifest.parquet").is_file():
            fail(f"{p} is not an ingested dataset (no samples.h5 + manifest.parquet)",
                 "make one with `make ingest DATASET=synthetic`, or `slim-ingest ntu60 --raw DIR --out data`")
        return p
    found = list_datasets("data")
    if not found:
        fail("no dataset under data/ to pretrain on",
             "make the synthetic one with `make ingest DATASET=synthetic`, or ingest a real dataset "
             "(`make ingest DATASET=ntu60 RAW=/path/to/nturgbd_skeletons`), then run this again")
    if len(found) > 1:
        fail("several datasets under data/: " + ", ".join(str(p) for p in found),
             f"choose one with --data, e.g. `slim-train pretrain --data {found[0]}`")
    return found[0]


def _pick_benchmark(data_dir: Path, benchmark: str | None) -> str:
    from slim.ingest.clitools import fail
    from slim.ingest.manifest import read_manifest
    try:
        _, meta = read_manifest(data_dir)
    except Exception as exc:  # noqa: BLE001 - any reader failure: the same advice
        fail(f"{data_dir / 'manifest.parquet'} cannot be read ({exc})", "re-run the ingest of this dataset")
    known = list(meta.get("benchmarks") or [])
    if benchmark is None:
        if not known:
            fail(f"{data_dir}: the manifest lists no benchmark", "re-run the ingest of this dataset")
        return known[0]
    if known and benchmark not in known:
        fail(f"benchmark {benchmark!r} is not defined for {data_dir.name}", f"choose one of {', '.join(known)}")
    return benchmark


@click.command("pretrain", context_settings={"show_default": True})
@click.option("--data", "data", type=click.Path(file_okay=False), default=None,
              help="Ingested dataset folder (default: the only one under data/).")
@click.option("--benchmark", default=None, help="Benchmark whose training split is used (default: the "
              "dataset's first, e.g. xsub).")
@click.option("--preset", type=click.Choice(PRESET_CHOICES), default="auto",
              help="Starting point: paper (GPU recipe), cpu-demo (~10 min on 2 cores), cpu-real (short "
                   "real sequences such as NW-UCLA, ~5 min), cpu-smoke (seconds); "
                   "auto = paper with a GPU, cpu-demo without.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="TOML file of overrides ([optim] base_lr = 1e-3 ...), applied after the preset.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override one key, repeatable, applied last: --set optim.base_lr=1e-3 "
                   "--set model.encoder.depth=4 --set pipeline.masking=random "
                   "--set pipeline.local_counts=[1,2,1]. Unknown keys are errors.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default: runs/<dataset>-<benchmark>-<preset, or the --config file's name>; "
                   "the folder of the same data, benchmark and config is reused: re-running the same "
                   "command resumes it, or says it is finished).")
@click.option("--print-config", is_flag=True, help="Print the resolved config as TOML and exit.")
@click.option("--comments", is_flag=True,
              help="With --print-config: explain every key above it (meaning, paper default, source).")
@click.option("--extend", is_flag=True,
              help="Train an existing run (finished or not) further with a larger schedule.epochs, "
                   "e.g. --extend --set schedule.epochs=42: the lr, weight decay, momentum and teacher "
                   "temperature schedules are recomputed for the new length and followed from the "
                   "checkpoint's step on.")
def pretrain(data, benchmark, preset, config_file, sets, out, print_config, comments, extend):
    """Self-supervised SLiM pretraining (resumable; DDP under torchrun).

    \b
    Config = defaults (the paper's recipe) <- --preset <- --config FILE.toml <- --set KEY=VALUE.
    Keys are section.field (sections: model, model.encoder, model.head, pipeline, optim,
    schedule, data, checkpoint, run); `--print-config` lists them all.
    \b
    Examples:
      slim-train pretrain
      slim-train pretrain --data data/synthetic --benchmark xsub --preset cpu-smoke --out runs/smoke
      torchrun --standalone --nproc_per_node 2 -m slim.train.cli pretrain --preset cpu-smoke --out runs/ddp
      TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun --nnodes 2:4 --nproc-per-node 4 --max-restarts 3
        --rdzv-backend c10d --rdzv-endpoint HOST:29400 --rdzv-id JOB -m slim.train.cli pretrain
        --data /shared/data/ntu60 --preset paper --out /shared/runs/ntu60   (on every node; README:
        "Training on a cluster")
    
    Under torchrun --max-restarts, a restart after a lost worker resumes every rank from
    the last complete checkpoint (rank 0 chooses it); --out must be shared by all nodes.
    SIGTERM or Ctrl-C saves a checkpoint, writes status "interrupted" and the step to
    run.json and exits 143 (SIGTERM) or 130 (Ctrl-C); the same command resumes.
    Exit codes: 0 finished, 2 bad input or a failed run, 130 / 143 interrupted.
    """
    import torch

    from slim.ingest.clitools import console, fail

    from . import config as C
    from .checkpoint import CheckpointError
    from .configtools import ConfigError, load_toml, parse_set

    if preset == "auto":
        preset = "paper" if torch.cuda.is_available() else "cpu-demo"
    try:
        cfg = C.resolve(preset, load_toml(Path(config_file)) if config_file else None, parse_set(list(sets)))
    except ConfigError as exc:
        fail(str(exc), "run `slim-train pretrain --print-config` to see every key and its value")
    if print_config:
        console.print(C.to_toml(cfg, C.print_header(preset, comments), comments=comments).rstrip(),
                      markup=False, highlight=False, soft_wrap=True)
        return
    if comments:
        fail("--comments goes with --print-config", "run `slim-train pretrain --print-config --comments`")
    data_dir = _pick_dataset(data)
    benchmark = _pick_benchmark(data_dir, benchmark)
    name = Path(config_file).stem if config_file else preset
    run_dir = Path(out) if out else _default_out(data_dir, benchmark, name, cfg, extend)
    if os.environ.get("RANK", "0") == "0":
        console.print(f"[bold]data[/] {data_dir} · [bold]benchmark[/] {benchmark} · [bold]run folder[/] "
                      f"{run_dir} ({_folder_state(run_dir)})")

    from .trainer import TrainingError, pretrain as run_pretrain
    try:
        info = run_pretrain(cfg, data_dir=data_dir, benchmark=benchmark, run_dir=run_dir, preset=preset,
                            console=console, extend=extend)
    except (CheckpointError, TrainingError) as exc:
        fail(str(exc), exc.hint)
    except ConfigError as exc:
        fail(str(exc), "check the keys you set")
    if info.get("status") == "finished" and os.environ.get("RANK", "0") == "0":
        console.print(f"run folder: {run_dir}")
    if info.get("status") == "interrupted":
        # A stopped run is not a success: `pretrain && eval` must not evaluate it.
        raise click.exceptions.Exit(interrupted_exit_code(info.get("stopped_by")))


def interrupted_exit_code(stopped_by: str | None) -> int:
    """The shell's convention for a run stopped by a signal: 128 + signal number
    (SIGINT 130, SIGTERM 143); 1 for any other stop (e.g. the library's stop_after)."""
    import signal
    try:
        return 128 + int(signal.Signals[str(stopped_by)])
    except KeyError:
        return 1


def _folder_state(run_dir: Path) -> str:
    """A few words on what the run folder holds: new, or a run's status and step."""
    from .runs import read_run
    try:
        info = read_run(run_dir)
    except (OSError, ValueError):
        return "new"
    status, step, total = info.get("status"), info.get("step"), info.get("total_steps")
    if status == "finished":
        return f"finished at step {total}: nothing to train"
    return f"{status} at step {step} of {total}: resuming"


def _default_out(data_dir: Path, benchmark: str, name: str, cfg, extend: bool = False) -> Path:
    """runs/<dataset>-<benchmark>-<name> (name: the preset, or the --config file's stem).
    A folder holding a run of the same data, benchmark and config is reused whatever its
    status (an unfinished one resumes, a finished one reports that it is done), so the
    same command always lands in the same folder; `-2`, `-3`, ... only for another config."""
    from . import config as C
    from .runs import default_run_dir, read_run
    from .trainer import EXTEND_KEYS

    def same_run(folder: Path) -> bool:
        try:
            info = read_run(folder)
            saved = C.from_toml_text((folder / "config.toml").read_text())
        except (OSError, ValueError):
            return False
        bad = [b for b in C.incompatible_keys(saved, cfg) if not (extend and b[0] in EXTEND_KEYS)]
        return info.get("data") == str(data_dir.resolve()) and info.get("benchmark") == benchmark and not bad

    return default_run_dir("runs", f"{data_dir.name}-{benchmark}-{name}", same_run)
