"""Fault injection for the elastic-training tests: a worker that kills itself with
SIGKILL (no handler, no cleanup: what a lost node looks like to the others) at a chosen
step of a chosen elastic attempt.

`SLIM_FAULT_KILL` holds comma-separated faults `ATTEMPT:RANK:STEP[:save]`:
- ATTEMPT: the value of TORCHELASTIC_RESTART_COUNT the fault fires in (0 = the first
  launch; outside torchrun the attempt is 0), so a restarted worker does not fire it again;
- RANK: the global rank that dies;
- STEP: it dies right after completing optimizer step STEP (before that step's sync
  point and checkpoint);
- `:save`: instead, it dies while writing the checkpoint of step STEP, with the
  temporary file half written (only rank 0 writes checkpoints, so RANK must be 0).

Example: `SLIM_FAULT_KILL=0:1:7,1:0:9:save` kills rank 1 after step 7 of the first
launch, then rank 0 in the middle of saving step 9 of the first restart. Unset: no fault,
and nothing here costs anything. A malformed value is a ValueError naming it."""
from __future__ import annotations

import dataclasses
import os
import signal

from .distributed import restart_count

ENV = "SLIM_FAULT_KILL"


@dataclasses.dataclass(frozen=True)
class Fault:
    attempt: int
    rank: int
    step: int
    in_save: bool


def parse(spec: str) -> list[Fault]:
    """The faults of a `SLIM_FAULT_KILL` value; ValueError on a malformed one."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        bits = part.split(":")
        try:
            if len(bits) not in (3, 4) or (len(bits) == 4 and bits[3] != "save"):
                raise ValueError
            attempt, rank, step = (int(b) for b in bits[:3])
        except ValueError:
            raise ValueError(f"{ENV}={spec!r}: each fault is ATTEMPT:RANK:STEP or ATTEMPT:RANK:STEP:save, "
                             f"got {part!r}") from None
        if len(bits) == 4 and rank != 0:
            raise ValueError(f"{ENV}={spec!r}: only rank 0 writes checkpoints, so a :save fault needs RANK 0")
        out.append(Fault(attempt, rank, step, len(bits) == 4))
    return out


class FaultPlan:
    """The faults of this process (its rank, the current elastic attempt)."""

    def __init__(self, rank: int, spec: str | None = None):
        spec = os.environ.get(ENV, "") if spec is None else spec
        attempt = restart_count()
        mine = [f for f in parse(spec) if f.attempt == attempt and f.rank == rank]
        self._after_step = {f.step for f in mine if not f.in_save}
        self._in_save = {f.step for f in mine if f.in_save}

    def after_step(self, step: int) -> None:
        """Called once optimizer step `step` is complete: dies here when planned."""
        if step in self._after_step:
            _die()

    def save_hook(self, step: int):
        """For `save_checkpoint(fault=...)`: a callable that truncates the open temporary
        file to half its length and dies, or None when no fault is planned at `step`."""
        if step not in self._in_save:
            return None

        def hook(f):
            f.flush()
            f.truncate(max(f.tell() // 2, 1))
            f.flush()
            os.fsync(f.fileno())
            _die()
        return hook


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
