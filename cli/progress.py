"""Training progress on stderr, in one of three displays: on a terminal a live table (one row
per run in training: epoch, progress inside the epoch, loss, val accuracy, ETA; and a bar for
the sweep); in a log (stderr not a terminal) one plain line per step worth logging; with
``--quiet`` nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bionic_cli.console import err_console
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table


class Display(StrEnum):
    LIVE = "live"  # a terminal: the live table
    LOG = "log"  # a file or pipe: plain lines
    QUIET = "quiet"  # --quiet: nothing


def duration(seconds: float | None) -> str:
    """``42s``, ``3:05``, ``1:02:03``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def epoch_line(row: dict[str, float], seconds: float) -> str:
    """A finished epoch: loss, val accuracy, the time it took."""
    return (f"loss {row['train_loss']:.3f}  val acc {100 * row['val_accuracy']:.1f} %  "
            f"{seconds:.1f}s")


@dataclass
class RunRow:
    """One run in training, as its row shows it."""

    label: str
    epochs: int
    epoch: int = 0  # epochs finished
    done: int = 0  # batches of the epoch in training
    batches: int = 0  # batches per epoch (0: not known yet)
    loss: float | None = None
    val_accuracy: float | None = None
    epoch_started: float = field(default_factory=time.monotonic)
    # wall-clock seconds of each epoch (a run trained with others records only its share)
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """How much of its epochs the run has trained."""
        inside = self.done / self.batches if self.batches else 0.0
        return min(1.0, (self.epoch + inside) / max(1, self.epochs))

    def eta(self, now: float) -> float | None:
        """Seconds until the run has trained all its epochs (early stopping may end it
        sooner): the mean epoch so far, else the pace of this epoch's batches."""
        elapsed = now - self.epoch_started
        if self.epoch_seconds:
            per_epoch = sum(self.epoch_seconds) / len(self.epoch_seconds)
        elif self.batches and self.done:
            per_epoch = elapsed * self.batches / self.done
        else:
            return None
        return max(0.0, (self.epochs - self.epoch) * per_epoch - elapsed)


class Board:
    """What the training commands show while they work (see the module docstring).

    Use it as a context manager around the work; every method is cheap and may be called from
    the training loop (at most twice a second per loop for :meth:`batch`).
    """

    def __init__(self, *, quiet: bool = False, console: Console | None = None) -> None:
        self.console = console or err_console
        self.display = (Display.QUIET if quiet else
                        Display.LIVE if self.console.is_terminal else Display.LOG)
        self.rows: dict[str, RunRow] = {}
        self.status = ""
        # The bar and its ETA count the runs in training by what they have done; the numbers
        # count finished ones.
        self.sweep = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                              TextColumn("{task.fields[count]}"),
                              TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                              console=self.console, auto_refresh=False)
        self.sweep_task: Any = None
        self.sweep_total: int | None = None
        self.sweep_done = 0
        self.live: Live | None = None

    def __enter__(self) -> Board:
        if self.display == Display.LIVE:
            self.live = Live(get_renderable=self.render, console=self.console,
                             refresh_per_second=4, transient=True)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.status = ""
        if self.live is not None:
            self.live.stop()
            self.live = None

    # ------------------------------------------------------------------ lines
    def phase(self, text: str) -> None:
        """What is happening now (``loading data demo …``; "" when training shows itself): a
        spinner on a terminal; nothing in a log, where an error stays the only line."""
        self.status = text

    def note(self, text: str, style: str | None = None) -> None:
        """A line worth keeping (above the live table)."""
        if self.display != Display.QUIET:
            self._print(text, style)

    def _print(self, text: str, style: str | None = None) -> None:
        self.console.print(text, style=style if self.display == Display.LIVE else None,
                           markup=False, highlight=False, soft_wrap=True)

    # ------------------------------------------------------------------ runs
    def run_started(self, key: str, label: str, epochs: int,
                    resumed_from: int | None = None) -> None:
        self.rows[key] = RunRow(label, epochs, epoch=resumed_from or 0)
        if self.display == Display.LOG:
            resumed = f", resuming after epoch {resumed_from}" if resumed_from else ""
            self._print(f"{label}: training ({epochs} epochs{resumed})")

    def batch(self, key: str, epoch: int, done: int, batches: int) -> None:
        row = self.rows.get(key)
        if row is not None:
            row.epoch, row.done, row.batches = epoch - 1, done, batches

    def epoch(self, key: str, epoch: int, row: dict[str, float]) -> None:
        run = self.rows.get(key)
        if run is None:
            return
        now = time.monotonic()
        run.epoch, run.done = epoch, 0
        run.loss, run.val_accuracy = row["train_loss"], row["val_accuracy"]
        run.epoch_seconds.append(now - run.epoch_started)
        run.epoch_started = now
        if self.display == Display.LOG:
            self._print(f"{run.label}: epoch {epoch}/{run.epochs}  "
                        f"{epoch_line(row, run.epoch_seconds[-1])}")

    def run_finished(self, key: str) -> None:
        self.rows.pop(key, None)

    # ------------------------------------------------------------------ the sweep
    def start_sweep(self, label: str, total: int | None) -> None:
        """A bar over the whole job (runs of a sweep, trials of a study; ``None``: open)."""
        self.sweep_total = total
        self.sweep_task = self.sweep.add_task(label, total=total, count=self._count(0))

    def sweep_advance(self, completed: int, line: str, style: str | None = None) -> None:
        """``completed`` units of the job are done; ``line`` says what the last one was."""
        self.sweep_done = completed
        if self.sweep_task is not None:
            self.sweep.update(self.sweep_task, completed=completed, count=self._count(completed))
        of = f"/{self.sweep_total}" if self.sweep_total else ""
        self.note(f"[{completed}{of}] {line}", style)

    def _count(self, completed: int) -> str:
        return f"{completed}/{self.sweep_total} done" if self.sweep_total else f"{completed} done"

    # ------------------------------------------------------------------ drawing
    def render(self) -> RenderableType:
        """The live display: the runs in training, the sweep bar, what is happening."""
        parts: list[RenderableType] = []
        rows = list(self.rows.values())
        if rows:
            parts.append(self._table(rows))
        if self.sweep_task is not None:  # the runs in training count by what they have done
            self.sweep.update(self.sweep_task,
                              completed=self.sweep_done + sum(r.fraction for r in rows))
            parts.append(self.sweep.get_renderable())
        if self.status:
            parts.append(Spinner("dots", text=self.status))
        return Group(*parts)

    @staticmethod
    def _table(rows: list[RunRow]) -> Table:
        now = time.monotonic()
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("run", "epoch", "this epoch", "loss", "val acc", "ETA"):
            table.add_column(column, justify="left" if column in ("run", "this epoch")
                             else "right")
        for row in rows:
            share = f" {100 * row.done / row.batches:3.0f} %" if row.batches else ""
            bar = ProgressBar(total=row.batches or None, completed=row.done, width=20)
            table.add_row(row.label, f"{min(row.epoch + 1, row.epochs)}/{row.epochs}",
                          _beside(bar, share) if share else bar,
                          "—" if row.loss is None else f"{row.loss:.3f}",
                          "—" if row.val_accuracy is None else f"{100 * row.val_accuracy:.1f} %",
                          duration(row.eta(now)))
        return table


def _beside(*parts: RenderableType) -> Table:
    """Renderables side by side on one line."""
    grid = Table.grid(padding=(0, 1))
    for _ in parts:
        grid.add_column()
    grid.add_row(*parts)
    return grid
