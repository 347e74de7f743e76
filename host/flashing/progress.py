"""Progress and status output for the flasher: rich bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, Protocol, TextIO


class Task(Protocol):
    def advance(self, amount: int) -> None: ...
    def set_total(self, total: int) -> None: ...


class Reporter:
    """Where the library reports what it does. The base class is silent (library default)."""

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    @contextmanager
    def task(self, description: str, total: int, unit: str = "B") -> Iterator[Task]:
        yield _NullTask()


class _NullTask:
    def advance(self, amount: int) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass


class _PlainTask:
    """Prints a line as each quarter is crossed, when it is crossed (the share reached, not every
    quarter passed at once), and nothing for the last: the caller's "done" line says it.
    Readable in CI logs, no control codes. Only byte counts are shown; polls have no percentage."""

    def __init__(self, out: TextIO, description: str, total: int, unit: str) -> None:
        self.out, self.description, self.total, self.unit = out, description, total, unit
        self.done = 0
        self.quarter = 0

    def advance(self, amount: int) -> None:
        self.done += amount
        if self.unit != "B" or self.total <= 0 or self.done >= self.total:
            return
        quarter = min(3, self.done * 4 // self.total)
        if quarter > self.quarter:
            self.quarter = quarter
            print(f"{self.description}: {self.done * 100 // self.total}% ({self.done}/{self.total} {self.unit})",
                  file=self.out, flush=True)

    def set_total(self, total: int) -> None:
        self.total = total


class ConsoleReporter(Reporter):
    """Reporter for the CLI: rich progress bars and colour on a TTY, plain lines when piped."""

    def __init__(self, out: TextIO | None = None, quiet: bool = False) -> None:
        self.out = sys.stdout if out is None else out
        self.quiet = quiet
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self._console = None
        if self.tty:
            from rich.console import Console

            self._console = Console(file=self.out, highlight=False)

    def info(self, message: str) -> None:
        if self.quiet:
            return
        if self._console is not None:
            self._console.print(message, markup=False)
        else:
            print(message, file=self.out, flush=True)

    def warn(self, message: str) -> None:
        if self._console is not None:
            self._console.print(f"[yellow]warning:[/yellow] {message}", markup=True)
        else:
            print(f"warning: {message}", file=self.out, flush=True)

    @contextmanager
    def task(self, description: str, total: int, unit: str = "B") -> Iterator[Task]:
        if self.quiet:
            yield _NullTask()
            return
        if self._console is None:
            print(f"{description}: {total} {unit}" if unit == "B" else f"{description} ...",
                  file=self.out, flush=True)
            task = _PlainTask(self.out, description, total, unit)
            yield task
            if task.done >= task.total:  # left incomplete: a timeout or an exception, never "done"
                print(f"{description}: done", file=self.out, flush=True)
            return
        from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn
        from rich.progress import TimeElapsedColumn

        amount = DownloadColumn() if unit == "B" else MofNCompleteColumn()
        with Progress(TextColumn("{task.description}"), BarColumn(), amount, TimeElapsedColumn(),
                      console=self._console, transient=False) as progress:
            tid = progress.add_task(description, total=total)

            class _RichTask:
                def advance(self, amount: int) -> None:
                    progress.advance(tid, amount)

                def set_total(self, total: int) -> None:
                    progress.update(tid, total=total)

            yield _RichTask()
