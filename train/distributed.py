"""Process-group setup from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK): the
same code runs as one process (no environment), or N processes with NCCL on GPUs and
gloo on CPUs. Small helpers reduce scalars and flags so every rank takes the same
decisions (stop, NaN) at the same step."""
from __future__ import annotations

import dataclasses
import datetime
import os

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def pick_device(kind: str, local_rank: int) -> torch.device:
    """kind: "auto" (CUDA when available), "cpu" or "cuda"."""
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("run.device=cuda but no CUDA device is visible; use run.device=cpu")
        return torch.device("cuda", local_rank)
    if kind != "cpu":
        raise ValueError(f"run.device must be auto, cpu or cuda, got {kind!r}")
    return torch.device("cpu")


def setup(device_kind: str = "auto", timeout_s: float = 1800.0) -> Dist:
    """Join the process group torchrun describes, or return a single-process Dist."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_kind, local)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s))
    return Dist(rank=rank, world_size=world, local_rank=local, device=device)


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_(t: torch.Tensor, d: Dist, op: str = "sum") -> torch.Tensor:
    """In place over ranks (no-op in one process). op: sum | max."""
    if d.active:
        dist.all_reduce(t, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op])
    return t


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def broadcast_object(obj, d: Dist):
    """Rank 0's value of a picklable object, on every rank."""
    if not d.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj, d: Dist) -> list:
    """[value of rank 0, rank 1, ...] on every rank."""
    if not d.active:
        return [obj]
    out = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out
