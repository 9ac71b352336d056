"""Progress bars for long work (rich), silent when disabled or when not on a terminal in CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _enabled(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return os.environ.get("CAUSALPERT_PROGRESS", "1") != "0"


@contextmanager
def progress_bar(description: str, total: int, *, enabled: bool | None = None) -> Iterator:
    """Yield ``advance(n=1, **fields)``; shows a bar with elapsed/remaining time and a status text.

    Disabled by ``enabled=False`` or the environment variable ``CAUSALPERT_PROGRESS=0``.
    """
    if not _enabled(enabled):
        yield lambda n=1, status=None: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("<"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total, status="")

        def advance(n: int = 1, status: str | None = None) -> None:
            if status is None:
                bar.update(task, advance=n)
            else:
                bar.update(task, advance=n, status=status)

        yield advance
