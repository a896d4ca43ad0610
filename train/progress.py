"""What a person watching a run sees: a rich progress bar (ETA, samples/s, the fraction
of time spent waiting for data, losses) on a terminal, or one plain line per logged step
when the output goes to a file (logs of batch jobs). Rank 0 only."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def summary(stats: dict) -> str:
    losses = " ".join(f"{k} {stats[k]:.4f}" for k in ("loss", "mfm", "glcl", "koleo") if k in stats)
    return (f"{losses} | {stats.get('samples_per_s', 0.0):.1f} samples/s, "
            f"data wait {100 * stats.get('data_wait', 0.0):.0f}% | lr {stats.get('lr', 0.0):.2e}")


class StepProgress:
    def __init__(self, console: Console, total: int, start: int, enabled: bool = True):
        self.console = console
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self._progress = None
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]pretrain"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                console=console, transient=False)
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
            self.console.print(f"step {step}: {summary(stats)}", soft_wrap=True)

    def print(self, *args, **kw) -> None:
        if self.enabled:
            (self._progress.console if self.live else self.console).print(*args, **kw)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
