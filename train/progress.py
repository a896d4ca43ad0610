"""What a person watching a run sees: a rich progress bar (ETA, samples/s, the fraction
of time spent waiting for data, losses) on a terminal, or one plain line per logged step
when the output goes to a file (logs of batch jobs). Rank 0 only."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column


def summary(stats: dict) -> str:
    losses = " ".join(f"{k} {stats[k]:.4f}" for k in ("loss", "mfm", "glcl", "koleo") if k in stats)
    return (f"{losses} | {stats.get('samples_per_s', 0.0):.1f} samples/s, "
            f"data wait {100 * stats.get('data_wait', 0.0):.0f}% | lr {stats.get('lr', 0.0):.2e}")


class StepProgress:
    """The live bar (terminal) or plain `step S/TOTAL: ...` lines (a file).

    The live line puts what matters first, step/total and ETA, then a short bar, then
    the losses and throughput, which are cut with an ellipsis when the terminal is
    narrow (80 columns keep step/total, elapsed and ETA whole)."""

    def __init__(self, console: Console, total: int, start: int, enabled: bool = True):
        self.console = console
        self.enabled = enabled
        self.total = total
        self.live = enabled and console.is_terminal
        self._progress = None
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]step"), MofNCompleteColumn(), TextColumn("eta"), TimeRemainingColumn(),
                TimeElapsedColumn(), BarColumn(bar_width=12),
                TextColumn("{task.fields[info]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis",
                                                                       min_width=0)),
                console=console, transient=False, expand=True)
            self._task = self._progress.add_task("pretrain", total=total, completed=start, info="")
            self._progress.start()

    def update(self, step: int, stats: dict | None = None) -> None:
        """`step` = steps completed; `stats` present on logged steps."""
        if not self.enabled:
            return
        if self.live:
            kw = {"info": summary(stats)} if stats else {}
            self._progress.update(self._task, completed=step, **kw)
        elif stats:
            self.console.print(f"step {step}/{self.total}: {summary(stats)}", soft_wrap=True)

    def print(self, *args, **kw) -> None:
        if self.enabled:
            (self._progress.console if self.live else self.console).print(*args, **kw)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
