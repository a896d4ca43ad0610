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


class ProcessGroupError(RuntimeError):
    """This worker could not join (or must not join) the process group; `hint` says what to do."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def check_elastic_env(env=os.environ) -> None:
    """Raise ProcessGroupError when torchrun restarts workers (`--max-restarts N`, N > 0)
    and shares its rendezvous TCPStore with them (TORCHELASTIC_USE_AGENT_STORE=True, the
    default of the c10d and static rendezvous since torch 2.4): that store outlives the
    workers, so a restarted worker can read the previous attempt's keys (rank 0's gloo
    address) and fail to connect or wait forever. Source: pytorch/pytorch#135712; seen here
    with torch 2.13 (a restart after a SIGKILL hung in the first collective). With
    TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in torchrun's environment every attempt gets a
    new store."""
    shared = env.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    try:
        restarts = int(env.get("TORCHELASTIC_MAX_RESTARTS", "0"))
    except ValueError:
        restarts = 0
    if shared and restarts > 0:
        raise ProcessGroupError(
            f"torchrun restarts lost workers (--max-restarts {restarts}) but shares its rendezvous store "
            "with them: a restarted worker can read the previous attempt's addresses and fail to connect "
            "or hang (pytorch/pytorch#135712)",
            "launch with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in torchrun's environment, e.g. "
            "`TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun --max-restarts 3 ...`, or with --max-restarts 0")


def setup(device_kind: str = "auto", timeout_s: float = 1800.0) -> Dist:
    """Join the process group torchrun describes, or return a single-process Dist.
    Raises RuntimeError / ValueError for a device that cannot be used (`pick_device`),
    ProcessGroupError when torchrun's environment would make restarts unsafe
    (`check_elastic_env`) or the group cannot be joined (another worker gone, an
    unreachable MASTER_ADDR)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_kind, local)
    if world > 1 and not dist.is_initialized():
        check_elastic_env()
        if device.type == "cuda":
            torch.cuda.set_device(device)
        try:
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                    rank=rank, world_size=world,
                                    timeout=datetime.timedelta(seconds=timeout_s))
        except RuntimeError as exc:  # DistBackendError, DistNetworkError, store timeouts
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ProcessGroupError(
                f"rank {rank} of {world} could not join the process group at "
                f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} ({first})",
                "another worker failed first (see its error above), or the nodes cannot reach each other "
                "(firewall, GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME); under torchrun a restart follows "
                "when --max-restarts allows") from None
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


#: Set by torchrun's elastic agent in every worker: 0 on the first launch, +1 each time
#: the agent restarts the workers after one failed (`--max-restarts N`). Source:
#: torch.distributed.elastic.agent.server.local_elastic_agent (worker environment).
RESTART_ENV = "TORCHELASTIC_RESTART_COUNT"


def restart_count() -> int:
    """The elastic attempt this process belongs to: 0 on the first launch (or outside
    torchrun), n after n restarts of the workers."""
    try:
        return int(os.environ.get(RESTART_ENV, "0"))
    except ValueError:
        return 0

