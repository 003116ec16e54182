"""Progress bars for long commands: counts, rate and time left on a terminal, nothing else.

The library's long functions take ``progress(done, total)`` callbacks; :func:`progress_bar`
gives one that drives a rich bar on the CLI's console and is quiet when that is not a
terminal (a pipe, a file, CI logs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from qaflow.cli._common import console


@contextmanager
def progress_bar(description: str, *, unit: str = "") -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback shown as a bar while the block runs."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = bar.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update
