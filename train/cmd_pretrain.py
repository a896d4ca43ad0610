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
              help="Run folder (default: runs/<dataset>-<benchmark>-<preset>, or the unfinished run of "
                   "the same config there). Re-running the same command resumes it.")
@click.option("--print-config", is_flag=True, help="Print the resolved config as TOML and exit.")
def pretrain(data, benchmark, preset, config_file, sets, out, print_config):
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
    SIGTERM or Ctrl-C saves a checkpoint and exits; the same command resumes.
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
        console.print(C.to_toml(cfg, f"preset {preset}").rstrip(), markup=False, highlight=False)
        return
    data_dir = _pick_dataset(data)
    benchmark = _pick_benchmark(data_dir, benchmark)
    run_dir = Path(out) if out else _default_out(data_dir, benchmark, preset, cfg)

    from .trainer import TrainingError, pretrain as run_pretrain
    try:
        info = run_pretrain(cfg, data_dir=data_dir, benchmark=benchmark, run_dir=run_dir, preset=preset,
                            console=console)
    except (CheckpointError, TrainingError) as exc:
        fail(str(exc), exc.hint)
    except ConfigError as exc:
        fail(str(exc), "check the keys you set")
    if info.get("status") == "finished" and os.environ.get("RANK", "0") == "0":
        console.print(f"run folder: {run_dir}")


def _default_out(data_dir: Path, benchmark: str, preset: str, cfg) -> Path:
    """runs/<dataset>-<benchmark>-<preset>, skipping folders of finished runs or of other configs."""
    from . import config as C
    from .runs import default_run_dir, read_run

    def resumable(folder: Path) -> bool:
        try:
            info = read_run(folder)
            saved = C.from_toml_text((folder / "config.toml").read_text())
        except (OSError, ValueError):
            return False
        return (info.get("status") != "finished" and info.get("data") == str(data_dir.resolve())
                and info.get("benchmark") == benchmark and not C.incompatible_keys(saved, cfg))

    return default_run_dir("runs", f"{data_dir.name}-{benchmark}-{preset}", resumable)
