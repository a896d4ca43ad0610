"""Loaders: the pretraining stream (batches of views and masks) and the deterministic
evaluation loader (test transform, both persons).

Pretraining batches are a pure function of (seed, rank, world_size, step) for the HDF5
source: step k of rank r takes positions [k * B * W + r * B, ... + B) of the epoch's
sample order (permutations seeded by (seed, epoch), the same on every rank) and draws
every random choice of its transform from a generator seeded by (seed, rank, k). So
`start_step=k` reproduces exactly what a fresh loader yields from step k on, for any
number of DataLoader workers. The shard source streams per (rank, slot) with slot =
step % num_workers, seeded by (seed, rank, slot, epoch); it is exact for a fixed
num_workers and resumes by skipping the samples of earlier steps of the same epoch.
Shards come from a local folder or any URL spec (pipeline/shardset.py); each shard batch
carries "shard_events" (retries and skips of shard fetches since the worker's last batch).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.utils.data

from slim.ingest.manifest import dataset_layout
from slim.ingest.topology import NTU25, Layout

from .collate import add_mfm_index
from .config import PipelineConfig
from .shardset import ShardError, ShardReader, resolve
from .sources import H5Dataset, slot_shards, split_rows, stream_samples
from .transform import pretrain_batch
from .views import test_view

# Distinct SeedSequence words keep the independent random streams apart.
_ORDER, _TRANSFORM, _SHARDS = 1, 2, 3


def _rng(*words: int) -> np.random.Generator:
    return np.random.default_rng([int(w) for w in words])


def to_torch(batch: dict, items: list[dict], cfg: PipelineConfig | None = None,
             layout: Layout = NTU25) -> dict:
    """numpy batch from `pretrain_batch` + its items -> the documented torch batch; with
    cfg, also the fixed-size masked-token index ("mfm_index", "mfm_weight":
    `slim.pipeline.collate.add_mfm_index`; `layout` is the data's skeleton layout, whose
    widest group bounds the tube masks' overshoot)."""
    out = {
        "global": torch.from_numpy(batch["global"]),
        "global_mask": torch.from_numpy(batch["global_mask"]),
        "locals": [{"x": torch.from_numpy(s["x"]), "mask": torch.from_numpy(s["mask"]),
                    "anchor": torch.from_numpy(s["anchor"])} for s in batch["locals"]],
        "index": torch.tensor([it["index"] for it in items], dtype=torch.int64),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.int64),
        "ids": [it["id"] for it in items],
    }
    return add_mfm_index(out, cfg, layout) if cfg is not None else out


@dataclass(frozen=True)
class ShardFaults:
    """How the shard source meets a failing fetch: `retries` more tries after `wait`,
    2 `wait`, ... seconds, then the shard is skipped; more than `max_failed` (a share of
    a reader's shards) skipped stops the run (train/config.py data.shard_retries,
    data.shard_retry_wait, data.max_failed_shards)."""
    retries: int = 3
    wait: float = 1.0
    max_failed: float = 0.05


class PretrainStream(torch.utils.data.IterableDataset):
    """Yields whole pretraining batches; DataLoader worker w of W makes steps
    start_step + w, start_step + w + W, ... (the DataLoader hands them out in order)."""

    def __init__(self, data_dir, benchmark: str, cfg: PipelineConfig, batch_size: int, *,
                 seed: int, rank: int, world_size: int, num_workers: int,
                 epoch_samples: int | None, source: str, start_step: int,
                 end_step: int | None, shards: str = "", faults: ShardFaults | None = None):
        self.data_dir = Path(data_dir)
        self.cfg, self.batch_size, self.seed = cfg, int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.num_workers = max(int(num_workers), 1)
        self.source, self.start_step, self.end_step = source, int(start_step), end_step
        # The skeleton layout travels with the data (manifest `slim.layout`).
        self.layout = dataset_layout(self.data_dir)
        if source == "h5":
            self.h5 = H5Dataset(self.data_dir, split=f"{benchmark}_train")
            n = len(self.h5)
        elif source == "shards":
            self.faults = faults or ShardFaults()
            self.shards = resolve(shards, self.data_dir / "shards" / f"{benchmark}_train")
            slot_shards(self.shards.urls, 0, self.world_size * self.num_workers,
                        self.shards.where)  # fail early
            n = int(split_rows(self.data_dir, f"{benchmark}_train").shape[0])
            if self.shards.num_samples is not None and self.shards.num_samples != n:
                raise ShardError(f"{self.shards.where}: its index lists {self.shards.num_samples} samples, "
                                 f"{self.data_dir}'s manifest has {n} in {benchmark}_train",
                                 "point data.shards at the shards of this dataset and benchmark "
                                 "(shards/<benchmark>_train of the same ingest)")
        else:
            raise ValueError(f"source must be 'h5' or 'shards', got {source!r}")
        self.split_size = n
        self.epoch_samples = int(epoch_samples or n)
        global_batch = self.batch_size * self.world_size
        self.steps_per_epoch = self.epoch_samples // global_batch
        if self.steps_per_epoch < 1:
            raise ValueError(f"{self.data_dir}: epoch of {self.epoch_samples} samples is smaller "
                             f"than one global batch ({global_batch}); lower the batch size")

    # --- sample order (HDF5) -----------------------------------------------------------
    def rows_for_step(self, step: int) -> np.ndarray:
        """HDF5 rows of this rank's batch at `step`: int64 [B]. The epoch's order is the
        concatenation of permutations of the split seeded by (seed, epoch, chunk)."""
        e, j = divmod(step, self.steps_per_epoch)
        n, b = self.split_size, self.batch_size
        pos = (j * self.world_size + self.rank) * b + np.arange(b)
        chunk, within = np.divmod(pos, n)
        out = np.empty(b, dtype=np.int64)
        for c in np.unique(chunk):
            perm = _rng(self.seed, _ORDER, e, c).permutation(n)
            out[chunk == c] = self.h5.rows[perm[within[chunk == c]]]
        return out

    def _steps(self, w: int) -> range:
        stop = self.end_step if self.end_step is not None else 2**62
        return range(self.start_step + w, stop, self.num_workers)

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        w = info.id if info is not None else 0
        if info is not None and info.num_workers != self.num_workers:
            raise RuntimeError("PretrainStream was built for a different number of workers")
        if self.source == "h5":
            for step in self._steps(w):
                items = [self.h5.item(r) for r in self.rows_for_step(step)]
                yield self._batch(items, step)
        else:
            yield from self._iter_shards(w)

    def _batch(self, items: list[dict], step: int) -> dict:
        rng = _rng(self.seed, _TRANSFORM, self.rank, step)
        return to_torch(pretrain_batch([it["joints"] for it in items], self.cfg, rng, self.layout),
                        items, self.cfg, self.layout)

    def _iter_shards(self, w: int) -> Iterator[dict]:
        slots = self.world_size * self.num_workers
        steps = self._steps(w)
        if len(steps) == 0:
            return
        slot = (self.start_step + w) % self.num_workers
        mine = slot_shards(list(range(len(self.shards.urls))), self.rank * self.num_workers + slot, slots,
                           self.shards.where)
        reader = ShardReader(self.shards, self.faults.retries, self.faults.wait)
        spe, b = self.steps_per_epoch, self.batch_size
        stream, epoch = None, -1
        for step in steps:
            e = step // spe
            if e != epoch:
                stream = stream_samples(mine, _rng(self.seed, _SHARDS, self.rank, slot, e),
                                        read=reader.read, max_failed=self.faults.max_failed)
                epoch = e
                # Steps of this slot earlier in the epoch (resume): skip their samples.
                first = e * spe
                done = len(range(first + (slot - first) % self.num_workers, step, self.num_workers))
                for _ in range(done * b):
                    next(stream)
            items = [next(stream) for _ in range(b)]
            batch = self._batch(items, step)
            batch["shard_events"] = reader.drain()
            yield batch


class PretrainLoader:
    """Iterable of pretraining batches (see build_pretrain_loader); endless unless
    end_step is given. `steps_per_epoch` = epoch_samples // (batch_size * world_size)."""

    def __init__(self, stream: PretrainStream, num_workers: int, pin_memory: bool = False,
                 prefetch: int = 4):
        self.stream = stream
        self.steps_per_epoch = stream.steps_per_epoch
        self.epoch_samples = stream.epoch_samples
        # Persistent workers keep their open HDF5 handles and imports when the loader is
        # iterated again; pinned batches let the trainer copy to a GPU without blocking.
        self.loader = torch.utils.data.DataLoader(
            stream, batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
            persistent_workers=num_workers > 0, prefetch_factor=max(int(prefetch), 1) if num_workers else None)

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        if self.stream.end_step is None:
            raise TypeError("endless loader: pass end_step to build_pretrain_loader for a length")
        return max(self.stream.end_step - self.stream.start_step, 0)


def build_pretrain_loader(data_dir: str | os.PathLike, benchmark: str, cfg: PipelineConfig,
                          batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1,
                          num_workers: int = 0, epoch_samples: int | None = None,
                          source: str = "h5", start_step: int = 0,
                          end_step: int | None = None, pin_memory: bool = False,
                          prefetch: int = 4, shards: str = "",
                          faults: ShardFaults | None = None) -> PretrainLoader:
    """Pretraining batches of `batch_size` samples per rank for steps start_step,
    start_step + 1, ... (until end_step, exclusive, or forever); V and the skeleton rules
    of the views come from the dataset's layout (manifest `slim.layout`):

      global      float32 [B, 2, global_len, V, C]  one person per sample, re-centred
      global_mask bool    [B, 2, global_len // patch_t * V]  True = masked (always)
      locals      [{x: float32 [B, n_s, T_s, V, C], mask: bool [B, n_s, T_s // patch_t * V],
                    anchor: int64 [n_s]} per scale, longest first]
      index int64 [B] (rows of samples.h5), label int64 [B], ids list[str]
      mfm_index int64 [U], mfm_weight float32 [U]  the masked global tokens, padded to
                    U = mfm_capacity(cfg, B, N) (the same at every step: static shapes)

    Every rank yields the same number of batches (no DDP hang on uneven data).
    pin_memory: batches in page-locked memory (set when training on a GPU: the trainer
    then copies them with non_blocking=True); prefetch: batches each worker keeps ready
    (DataLoader prefetch_factor; num_workers * prefetch batches in flight).
    shards (source "shards"): a shardset.resolve spec ("" = the dataset's
    shards/<benchmark>_train folder); faults: retries, back-off and the share of failed
    shards that stops the stream; shard batches also carry "shard_events" (list of
    {"shard", "kind": "retry" | "skip", "error"}). Raises shardset.ShardError (error +
    hint) for a spec, index or manifest that disagree.
    """
    stream = PretrainStream(data_dir, benchmark, cfg, batch_size, seed=seed, rank=rank,
                            world_size=world_size, num_workers=num_workers,
                            epoch_samples=epoch_samples, source=source,
                            start_step=start_step, end_step=end_step, shards=shards, faults=faults)
    return PretrainLoader(stream, num_workers, pin_memory=pin_memory, prefetch=prefetch)


# --- evaluation ------------------------------------------------------------------------

class EvalDataset(torch.utils.data.Dataset):
    """Test transform of one split, a rank's strided part (rows rank::world_size)."""

    def __init__(self, h5: H5Dataset, rank: int, world_size: int, out_len: int, crop: float):
        self.h5, self.rows = h5, h5.rows[rank::world_size]
        self.out_len, self.crop = out_len, crop

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __getitem__(self, i: int) -> dict:
        it = self.h5.item(self.rows[i])
        it["x"] = test_view(it.pop("joints"), self.out_len, self.crop)
        return it


def collate_eval(items: list[dict]) -> dict:
    """Items with x float32 [M_i, T, V, C] -> {x: float32 [B, 2, T, V, C] (absent person
    zeros), person_mask: bool [B, 2], label, index: int64 [B], ids}."""
    t, v, c = items[0]["x"].shape[1:]
    x = np.zeros((len(items), 2, t, v, c), dtype=np.float32)
    for i, it in enumerate(items):
        x[i, :it["x"].shape[0]] = it["x"][:2]
    return {"x": torch.from_numpy(x),
            "person_mask": torch.from_numpy(np.any(x != 0, axis=(2, 3, 4))),
            "label": torch.tensor([it["label"] for it in items], dtype=torch.int64),
            "index": torch.tensor([it["index"] for it in items], dtype=torch.int64),
            "ids": [it["id"] for it in items]}


def build_eval_loader(data_dir: str | os.PathLike, split: str, batch_size: int, *,
                      subset: str | None = None, rank: int = 0, world_size: int = 1,
                      num_workers: int = 0, cfg: PipelineConfig | None = None
                      ) -> torch.utils.data.DataLoader:
    """Deterministic batches of a split in manifest order (test transform, no
    augmentation): {x: float32 [B, 2, 64, V, C], person_mask: bool [B, 2], label: int64
    [B], index: int64 [B], ids: list[str]}. Under DDP rank r gets rows r::world_size
    (ranks may differ by one sample); gather by `index`."""
    cfg = cfg or PipelineConfig()
    ds = EvalDataset(H5Dataset(data_dir, split=split, subset=subset), rank, world_size,
                     cfg.global_len, cfg.test_crop)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False,
                                       num_workers=num_workers, collate_fn=collate_eval)
