"""The stream of pretraining batches a rank consumes, as a function of the step it starts
at: the pipeline makes the data order a pure function of (seed, rank, step), so a run
resumed at step s sees exactly the batches an uninterrupted run sees from step s on."""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path

#: (start_step, rank, world_size, per_rank_batch) -> iterator of batches from that step on.
BatchSource = Callable[[int, int, int, int], Iterator[dict]]


def count_train_samples(data_dir: Path, benchmark: str) -> int:
    """Rows of the `<benchmark>_train` split in the manifest (for data-pass epochs)."""
    from slim.ingest.manifest import read_manifest
    table, _ = read_manifest(data_dir)
    col = f"{benchmark}_train"
    if col not in table.column_names:
        raise ValueError(f"{Path(data_dir) / 'manifest.parquet'} has no {col!r} column: "
                         f"benchmark {benchmark!r} is not defined for this dataset")
    return int(sum(1 for v in table.column(col).to_pylist() if v))


def pipeline_source(data_dir: Path, benchmark: str, pipeline_cfg, *, seed: int, num_workers: int,
                    source: str, pin_memory: bool = False, prefetch: int = 4, shards: str = "",
                    faults=None) -> BatchSource:
    """The real pipeline (slim.pipeline.loader.build_pretrain_loader) as a BatchSource.
    When the loader is finite (one pass), it is rebuilt for the next pass, starting at
    the step reached, until the trainer stops asking. pin_memory: batches in page-locked
    memory (for non-blocking copies to a GPU); prefetch: batches each worker prepares
    ahead; shards, faults: where the shard source reads and how it meets failing
    fetches (slim.pipeline.loader.ShardFaults)."""
    from slim.pipeline.loader import build_pretrain_loader

    params = inspect.signature(build_pretrain_loader).parameters
    if "start_step" not in params:
        raise RuntimeError("slim.pipeline.loader.build_pretrain_loader has no start_step argument: "
                           "resumed runs could not regenerate their batches")

    def batches(start_step: int, rank: int, world_size: int, per_rank_batch: int) -> Iterator[dict]:
        step = start_step
        while True:
            loader = build_pretrain_loader(data_dir, benchmark, pipeline_cfg, per_rank_batch, seed=seed,
                                           rank=rank, world_size=world_size, num_workers=num_workers,
                                           source=source, start_step=step, pin_memory=pin_memory,
                                           prefetch=prefetch, shards=shards, faults=faults)
            produced = 0
            for batch in loader:
                produced += 1
                yield batch
            if produced == 0:
                raise RuntimeError(f"the pretraining loader for {data_dir} ({benchmark}) yielded no batch "
                                   f"at step {step}: is the training split smaller than one batch?")
            step += produced

    return batches
